-- int_session_state: the within-session state features of every decision, from the session's
-- events strictly before the decision's time tau (ts < tau; events at tau are not "before").
-- 1. Over all events ordered by time, RANGE frames ending 1 microsecond before each row give
--    the number of interactions before tau and the latest earlier event time.
-- 2. Interactions are numbered in canonical order; each carries inclusive running counts per
--    type and the actions of its last $last_k interactions.
-- 3. A decision joins the interaction whose number equals its count of interactions before
--    tau (an ASOF-style lookup written as an equi-join) and takes those counts and items.
-- Parameters:
--   $last_k_minus_1  INTEGER  last_k - 1 (frame of the recent-items list)
-- Columns: sid, eid, n_view, n_click, n_add_to_cart, n_purchase, prev_ts_us (NULL when no
--   earlier event), recent_items (actions of the last <= last_k interactions before tau,
--   oldest first; NULL when none)
with timeline as (
    select
        sid,
        eid,
        is_decision,
        coalesce(sum(case when is_interaction then 1 else 0 end) over before_tau, 0)
            as n_interactions,
        max(ts_us) over before_tau as prev_ts_us
    from int_events
    window before_tau as (
        partition by sid order by ts_us
        range between unbounded preceding and 1 preceding
    )
),

interactions as (
    select
        e.sid,
        row_number() over canonical as n_seen,
        sum(case when e.event_type = 'view' then 1 else 0 end) over canonical as n_view,
        sum(case when e.event_type = 'click' then 1 else 0 end) over canonical as n_click,
        sum(case when e.event_type = 'add_to_cart' then 1 else 0 end)
            over canonical as n_add_to_cart,
        sum(case when e.event_type = 'purchase' then 1 else 0 end) over canonical as n_purchase,
        list(a.action) over (
            partition by e.sid order by e.eid
            rows between $last_k_minus_1 preceding and current row
        ) as recent_items
    from int_events as e
    inner join int_item_actions as a on e.item_id = a.item_id
    where e.is_interaction
    window canonical as (
        partition by e.sid order by e.eid rows between unbounded preceding and current row
    )
)

select
    t.sid,
    t.eid,
    coalesce(i.n_view, 0) as n_view,
    coalesce(i.n_click, 0) as n_click,
    coalesce(i.n_add_to_cart, 0) as n_add_to_cart,
    coalesce(i.n_purchase, 0) as n_purchase,
    t.prev_ts_us,
    i.recent_items
from timeline as t
left join interactions as i
    on t.sid = i.sid and t.n_interactions = i.n_seen
where t.is_decision
