-- Rejected rows of one file by reason code, most frequent first.
-- $parameters: $source_file
SELECT reason_code, count(*) AS n
FROM rejected_events
WHERE source_file = $source_file
GROUP BY reason_code
ORDER BY n DESC, reason_code
