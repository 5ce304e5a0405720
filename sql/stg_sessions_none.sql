-- An empty _offrec_sessions: the source gives session ids, nothing to rebuild.
-- $parameters: none
CREATE OR REPLACE TEMP TABLE _offrec_sessions (
    source_row BIGINT,
    old_rowid BIGINT,
    old_session VARCHAR,
    session_id VARCHAR
)
