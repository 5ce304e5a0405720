-- The first few rejected rows of one file (for error messages).
-- $parameters: $source_file, $limit
SELECT source_row, source_line, reason
FROM rejected_events
WHERE source_file = $source_file
ORDER BY coalesce(source_row, source_line), source_line
LIMIT $limit
