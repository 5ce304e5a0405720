-- Events and rejected rows whose source file has no ingest_log entry (loaded by something
-- other than ingest, or left behind). Must return no rows.
-- $parameters: none
SELECT 'events' AS table_name, source_file, count(*) AS n
FROM events
WHERE source_file IS NULL OR source_file NOT IN (SELECT path FROM ingest_files)
GROUP BY source_file
UNION ALL
SELECT 'rejected_events' AS table_name, source_file, count(*) AS n
FROM rejected_events
WHERE source_file NOT IN (SELECT path FROM ingest_files)
GROUP BY source_file
ORDER BY table_name, source_file
