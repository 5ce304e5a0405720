-- What the tables now hold for one file, counted from the tables themselves (independently of
-- how the load computed it): events, rejected rows, duplicates, rows parsed, malformed lines.
-- Rows loaded equal events unless rows emit response events (see stg_file_rows_loaded.sql).
-- $parameters: $source_file
SELECT
    (SELECT count(*) FROM events WHERE source_file = $source_file) AS events_loaded,
    (SELECT count(*) FROM rejected_events WHERE source_file = $source_file) AS rows_rejected,
    (SELECT count(*) FROM _offrec_dup) AS rows_duplicate,
    (SELECT count(*) FROM _offrec_keys) AS rows_parsed,
    (SELECT count(*) FROM rejected_events
     WHERE source_file = $source_file AND source_row IS NULL) AS lines_malformed
