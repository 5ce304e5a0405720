-- Sessions ingest built (files with session_gap_s) that contain a gap longer than the gap
-- they were built with, or that span two users. Must return no rows.
-- $parameters: none
WITH rebuilt AS (
    SELECT e.session_id, e.user_id, e.ts, e.event_id, f.session_gap_s
    FROM events AS e
    INNER JOIN ingest_files AS f ON e.source_file = f.path
    WHERE f.session_gap_s IS NOT NULL
),

gaps AS (
    SELECT
        session_id,
        user_id,
        session_gap_s,
        epoch(ts) - epoch(lag(ts) OVER (PARTITION BY session_id ORDER BY ts, event_id)) AS gap_s
    FROM rebuilt
)

SELECT session_id, min(user_id) AS user_id, max(user_id) AS other_user, max(gap_s) AS max_gap_s
FROM gaps
GROUP BY session_id
HAVING count(DISTINCT user_id) > 1 OR max(gap_s) > max(session_gap_s)
ORDER BY session_id
LIMIT 20
