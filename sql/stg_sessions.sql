-- Rebuild sessions by inactivity for every user touched by this file: its new valid rows,
-- plus that user's events already loaded from files whose sessions ingest built
-- (ingest_files.session_gap_s IS NOT NULL), plus users of a replaced version of the file.
-- A session starts at a user's first event and after every gap > $gap_s seconds (events
-- ordered by ts, then event_id). Its id is deterministic: 's' + 24 hex of
-- md5(user_id, start ts), so reloading the same data gives the same ids, and a day loaded
-- later that continues a session from the previous day keeps that session's id.
-- Output: one row per new row (source_row) and per existing event (old_rowid).
-- $parameters: $gap_s
CREATE OR REPLACE TEMP TABLE _offrec_sessions AS
WITH new_rows AS (
    SELECT s.user_id, s.ts, s.event_id, s.source_row
    FROM _offrec_keys AS s
    ANTI JOIN _offrec_dup AS d ON s.source_row = d.source_row
    WHERE NOT s.is_bad
),

users AS (
    SELECT DISTINCT user_id FROM new_rows
    UNION
    SELECT user_id FROM _offrec_gone_users
),

rebuilt_files AS (
    SELECT path FROM ingest_files WHERE session_gap_s IS NOT NULL
),

old_rows AS (
    SELECT e.user_id, e.ts, e.event_id, e.rowid AS old_rowid, e.session_id AS old_session
    FROM events AS e
    SEMI JOIN users AS u ON e.user_id = u.user_id
    SEMI JOIN rebuilt_files AS f ON e.source_file = f.path
),

all_rows AS (
    SELECT user_id, ts, event_id, source_row, NULL AS old_rowid, NULL AS old_session
    FROM new_rows
    UNION ALL
    SELECT user_id, ts, event_id, NULL AS source_row, old_rowid, old_session
    FROM old_rows
),

flagged AS (
    SELECT
        *,
        CASE
            WHEN lag(ts) OVER w IS NULL THEN 1
            WHEN epoch(ts) - epoch(lag(ts) OVER w) > $gap_s THEN 1
            ELSE 0
        END AS starts_session
    FROM all_rows
    WINDOW w AS (PARTITION BY user_id ORDER BY ts, event_id)
),

numbered AS (
    -- the latest session start so far (ts ascending) is the start of the current session
    SELECT
        *,
        max(CASE WHEN starts_session = 1 THEN ts END) OVER w AS session_start
    FROM flagged
    WINDOW w AS (PARTITION BY user_id ORDER BY ts, event_id ROWS UNBOUNDED PRECEDING)
)

SELECT
    source_row,
    CAST(old_rowid AS BIGINT) AS old_rowid,
    CAST(old_session AS VARCHAR) AS old_session,
    's' || left(md5(user_id || chr(31) || strftime(session_start, '%Y-%m-%dT%H:%M:%S.%f')), 24)
        AS session_id
FROM numbered
