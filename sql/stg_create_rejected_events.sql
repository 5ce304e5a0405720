-- Rows ingest refused, with why and where: nothing is dropped silently.
-- source_row is the 1-based data row (as in events.source_row); a CSV line that could not be
-- split into fields has source_row NULL and its physical line number in source_line.
-- raw holds the row as read (all source columns) or, for an unsplittable line, its text.
-- $parameters: none
CREATE TABLE IF NOT EXISTS rejected_events (
    source_file VARCHAR NOT NULL,
    source_row BIGINT,
    source_line BIGINT,
    reason_code VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    raw JSON,
    load_id BIGINT NOT NULL,
    ingested_at TIMESTAMP NOT NULL
)
