-- The warehouse `events` table (docs/design.md section 2); created once, never altered.
-- The row rules (event types, propensity in (0, 1], price >= 0, position >= 0) are enforced by
-- stg_events.sql before loading and re-checked by checks/ingest_events_contract.sql; they are
-- not CHECK constraints because those cost ~8% of load time on large files.
-- $parameters: none
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    user_id VARCHAR NOT NULL,
    session_id VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    position INTEGER,
    propensity DOUBLE,
    price DOUBLE,
    request_id VARCHAR,
    extra JSON,
    source_file VARCHAR,
    source_row BIGINT,
    ingested_at TIMESTAMP
)
