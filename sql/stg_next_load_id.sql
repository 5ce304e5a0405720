-- The id of the next ingest_log row.
-- $parameters: none
SELECT coalesce(max(load_id), 0) + 1 FROM ingest_log
