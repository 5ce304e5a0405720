-- Event ids stored more than once. Must return no rows.
-- $parameters: none
SELECT event_id, count(*) AS n, min(source_file) AS first_file, max(source_file) AS last_file
FROM events
GROUP BY event_id
HAVING count(*) > 1
ORDER BY n DESC, event_id
LIMIT 20
