-- Record a successful load of one file (the accounting CHECK on the table guards the counts).
-- $parameters: $load_id, $path, $size_bytes, $content_hash, $format, $mapping, $mapping_hash,
--   $session_gap_s, $rows_read, $rows_loaded, $rows_rejected, $rows_duplicate,
--   $events_loaded, $status, $started_at, $finished_at
INSERT INTO ingest_log (
    load_id, path, size_bytes, content_hash, format, mapping, mapping_hash, session_gap_s,
    rows_read, rows_loaded, rows_rejected, rows_duplicate, events_loaded, status, started_at,
    finished_at
)
VALUES (
    $load_id, $path, $size_bytes, $content_hash, $format, $mapping, $mapping_hash,
    $session_gap_s, $rows_read, $rows_loaded, $rows_rejected, $rows_duplicate,
    $events_loaded, $status, $started_at, $finished_at
)
