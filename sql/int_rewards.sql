-- int_rewards: the reward components of every decision that has any.
-- logged mode: responses (view, click, add_to_cart, purchase) attributed to an impression:
--   those carrying the impression's request_id and item, or, when the impression has no
--   request_id, responses without one in the same session on the same item at or after the
--   impression and before the session's next later impression; either way at most
--   $attribution_window_us after it. Responses are looked up in the sessions the build covers.
-- organic mode: the decision event itself.
-- Parameters:
--   $mode                   VARCHAR  'logged' or 'organic'
--   $attribution_window_us  BIGINT   how long after an impression responses still count
-- Columns: sid, eid (the decision), r_click (views + clicks), r_cart, r_purchase, r_revenue
--   (summed purchase price)
with impressions as (
    select
        sid,
        eid,
        ts_us,
        item_id,
        request_id
    from int_events
    where event_type = 'impression' and $mode = 'logged'
),

responses as (
    select
        sid,
        ts_us,
        event_type,
        item_id,
        request_id,
        price
    from int_events
    where is_interaction and $mode = 'logged'
),

by_request as (
    select
        i.sid,
        i.eid,
        r.event_type,
        r.price
    from impressions as i
    inner join responses as r
        on i.request_id = r.request_id and i.item_id = r.item_id
    where r.ts_us >= i.ts_us
      and r.ts_us - i.ts_us <= $attribution_window_us
),

-- sessions with impressions lacking a request_id: only they need the next-impression time
unkeyed_sessions as (
    select distinct sid
    from impressions
    where request_id is null
),

unkeyed as (
    select
        i.sid,
        i.eid,
        i.ts_us,
        i.item_id,
        i.request_id,
        min(i.ts_us) over (
            partition by i.sid order by i.ts_us
            range between 1 following and unbounded following
        ) as next_ts_us
    from impressions as i
    inner join unkeyed_sessions as u on i.sid = u.sid
),

by_session as (
    select
        i.sid,
        i.eid,
        r.event_type,
        r.price
    from unkeyed as i
    inner join responses as r
        on i.sid = r.sid and i.item_id = r.item_id
    where i.request_id is null
      and r.request_id is null
      and r.ts_us >= i.ts_us
      and (i.next_ts_us is null or r.ts_us < i.next_ts_us)
      and r.ts_us - i.ts_us <= $attribution_window_us
),

own_event as (
    select
        sid,
        eid,
        event_type,
        price
    from int_decisions
    where $mode = 'organic'
),

attributed as (
    select sid, eid, event_type, price from by_request
    union all
    select sid, eid, event_type, price from by_session
    union all
    select sid, eid, event_type, price from own_event
)

select
    sid,
    eid,
    sum(case when event_type in ('view', 'click') then 1 else 0 end) as r_click,
    sum(case when event_type = 'add_to_cart' then 1 else 0 end) as r_cart,
    sum(case when event_type = 'purchase' then 1 else 0 end) as r_purchase,
    sum(case when event_type = 'purchase' then coalesce(price, 0.0) else 0.0 end) as r_revenue
from attributed
group by sid, eid
