-- int_features: one row per kept decision with its action, rewards, episode facts and every
-- state feature as its own column (lists for the id features). fct_transitions packs them
-- into the state vector; the feature_spec statistics are computed from the train rows here.
-- Parameters:
--   $last_k  INTEGER  how many previous actions to keep
-- Columns: sid, episode_id, user_id, split, step, is_last, episode_terminal, decision_ts,
--   event_id, item_id, action, position, propensity, r_click, r_cart, r_purchase, r_revenue,
--   prev_actions (actions of the last <= last_k decisions, oldest first; NULL at step 0),
--   recent_items, and f_<name> for every count/numeric feature of sql/features.py (DOUBLE)
with decisions as (
    select
        d.sid,
        d.eid,
        d.step,
        d.ts_us,
        d.event_id,
        d.item_id,
        d.position,
        d.propensity,
        a.action,
        list(a.action) over (
            partition by d.sid order by d.step
            rows between $last_k preceding and 1 preceding
        ) as prev_actions
    from int_decisions as d
    inner join int_item_actions as a on d.item_id = a.item_id
)

select
    d.sid,
    ep.episode_id,
    ep.user_id,
    ep.split,
    d.step,
    d.step = ep.n_steps - 1 as is_last,
    ep.terminal as episode_terminal,
    make_timestamp(d.ts_us) as decision_ts,
    d.event_id,
    d.item_id,
    cast(d.action as integer) as action,
    d.position,
    d.propensity,
    coalesce(r.r_click, 0) as r_click,
    coalesce(r.r_cart, 0) as r_cart,
    coalesce(r.r_purchase, 0) as r_purchase,
    coalesce(r.r_revenue, 0.0) as r_revenue,
    d.prev_actions,
    s.recent_items,
    cast(d.step as double) as f_step,
    cast(s.n_view as double) as f_n_view,
    cast(s.n_click as double) as f_n_click,
    cast(s.n_add_to_cart as double) as f_n_add_to_cart,
    cast(s.n_purchase as double) as f_n_purchase,
    (d.ts_us - ep.start_us) / 1000000.0 as f_secs_since_session_start,
    coalesce((d.ts_us - s.prev_ts_us) / 1000000.0, 0.0) as f_secs_since_prev_event,
    -- UTC hour and weekday by arithmetic on epoch time (no session time zone involved);
    -- day 0 (1970-01-01) was a Thursday, so Monday = 0 is (day + 3) mod 7
    floor(d.ts_us / 3600000000.0) - 24 * floor(d.ts_us / 86400000000.0) as f_hour_of_day,
    (floor(d.ts_us / 86400000000.0) + 3)
    - 7 * floor((floor(d.ts_us / 86400000000.0) + 3) / 7.0) as f_day_of_week,
    cast(coalesce(d.position, 0) as double) as f_position,
    cast(h.hist_sessions as double) as f_hist_sessions,
    cast(h.hist_purchases as double) as f_hist_purchases,
    cast(h.hist_spend as double) as f_hist_spend
from decisions as d
inner join int_episodes as ep on d.sid = ep.sid
inner join int_session_state as s on d.sid = s.sid and d.eid = s.eid
inner join int_history as h on d.sid = h.sid
left join int_rewards as r on d.sid = r.sid and d.eid = r.eid
