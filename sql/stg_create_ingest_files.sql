-- The current state of every loaded file: its latest ingest_log row.
-- $parameters: none
CREATE VIEW IF NOT EXISTS ingest_files AS
SELECT *
FROM ingest_log
QUALIFY row_number() OVER (PARTITION BY path ORDER BY load_id DESC) = 1
