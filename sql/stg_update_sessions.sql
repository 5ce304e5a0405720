-- Give already-loaded events their rebuilt session id where it changed (a new file bridged
-- two sessions, or filled a gap before a session's first event).
-- $parameters: none
UPDATE events
SET session_id = ss.session_id
FROM _offrec_sessions AS ss
WHERE events.rowid = ss.old_rowid
    AND ss.old_session IS DISTINCT FROM ss.session_id
