-- One row per successful load of a file (new or replaced). Failed loads leave no trace in the
-- warehouse (the whole file is one transaction); unchanged files are skipped without a row.
-- The CHECK is the accounting invariant: every row read is loaded, rejected or a duplicate.
-- $parameters: none
CREATE TABLE IF NOT EXISTS ingest_log (
    load_id BIGINT NOT NULL,
    path VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    content_hash VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    mapping VARCHAR NOT NULL,
    mapping_hash VARCHAR NOT NULL,
    session_gap_s DOUBLE,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    rows_duplicate BIGINT NOT NULL,
    events_loaded BIGINT NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('loaded', 'replaced')),
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    CHECK (rows_read = rows_loaded + rows_rejected + rows_duplicate)
)
