-- int_decisions: every kept decision of int_events with its 0-based step in the session
-- (canonical order: ts, position NULLS FIRST, event_id); decisions at step >= $max_episode_len
-- are dropped (0 = keep all).
-- Parameters:
--   $max_episode_len  INTEGER  cap on decisions per session, 0 = no cap
-- Columns: sid, eid, step, ts_us, event_id, event_type, item_id, position, propensity, price
with ranked as (
    select
        sid,
        eid,
        row_number() over (partition by sid order by eid) - 1 as step,
        ts_us,
        event_id,
        event_type,
        item_id,
        position,
        propensity,
        price
    from int_events
    where is_decision
)

select *
from ranked
where $max_episode_len = 0 or step < $max_episode_len
