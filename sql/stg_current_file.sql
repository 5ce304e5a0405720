-- The loaded version of a file, if any.
-- $parameters: $path
SELECT content_hash, mapping_hash, session_gap_s, format, size_bytes, rows_read, rows_loaded,
    rows_rejected, rows_duplicate, events_loaded
FROM ingest_files
WHERE path = $path
