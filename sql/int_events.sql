-- int_events: the events of the sessions this build covers (sessions starting in
-- [$window_start, $window_end)), cut at $window_end, numbered within their session in the
-- canonical order (ts, position NULLS FIRST, event_id) and flagged with their role.
-- Parameters:
--   $window_start  TIMESTAMP  inclusive start of the data window (on session start)
--   $window_end    TIMESTAMP  exclusive end of the data window
--   $mode          VARCHAR    'logged' (decisions are impressions) or 'organic' (decisions are
--                             interaction events: view, click, add_to_cart, purchase)
-- Columns: sid, eid (1-based rank in the session in canonical order), event_id, ts_us (epoch
--   microseconds), event_type, item_id, position, propensity (impressions only), price,
--   request_id, is_decision, is_interaction
with covered as (
    select
        sid,
        session_id
    from int_sessions
    where start_us >= epoch_us($window_start)
      and start_us < epoch_us($window_end)
)

select
    c.sid,
    row_number() over (
        partition by c.sid order by e.ts, e.position nulls first, e.event_id
    ) as eid,
    e.event_id,
    epoch_us(e.ts) as ts_us,
    e.event_type,
    e.item_id,
    e.position,
    case when e.event_type = 'impression' then e.propensity end as propensity,
    e.price,
    e.request_id,
    case
        when $mode = 'logged' then e.event_type = 'impression'
        else e.event_type <> 'impression'
    end as is_decision,
    e.event_type <> 'impression' as is_interaction
from events as e
inner join covered as c on e.session_id = c.session_id
where e.ts >= $window_start
  and e.ts < $window_end
