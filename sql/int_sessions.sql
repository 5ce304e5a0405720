-- int_sessions: one row per session of the warehouse `events` table that starts before the end
-- of the data window: its user, first and last event time and whether the window cuts it.
-- Times are epoch microseconds (BIGINT) so later steps can use numeric RANGE frames; `sid` is a
-- compact integer id (rank of session_id) that later steps join and partition on.
-- Parameters:
--   $window_end  TIMESTAMP  exclusive end of the data window (events at or after it are unseen)
-- Columns: sid, session_id, user_id, user_id_max (differs from user_id when several users share
--   the session id, which the build rejects), start_us (first event, any time), last_us (last
--   event before $window_end), cut_by_window (the session has events at/after $window_end)
with sessions as (
    select
        session_id,
        min(user_id) as user_id,
        max(user_id) as user_id_max,
        min(epoch_us(ts)) as start_us,
        max(case when ts < $window_end then epoch_us(ts) end) as last_us,
        max(case when ts >= $window_end then 1 else 0 end) = 1 as cut_by_window
    from events
    group by session_id
    having min(ts) < $window_end
)

select
    row_number() over (order by session_id) as sid,
    session_id,
    user_id,
    user_id_max,
    start_us,
    last_us,
    cut_by_window
from sessions
