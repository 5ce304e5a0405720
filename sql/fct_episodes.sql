-- fct_episodes: one row per episode (= session) of a dataset version.
-- Parameters:
--   $dataset_version  VARCHAR  version id written into every row
--   $w_click, $w_cart, $w_purchase, $w_revenue  DOUBLE  reward weights (return = sum of rewards)
-- Columns: dataset_version, episode_id, user_id, split, start_ts, n_steps, n_dropped,
--   return, ended ('terminal' | 'timeout'), is_new_user (no other session of the user in the
--   lookback before this one)
with returns as (
    select
        sid,
        sum(
            $w_click * r_click + $w_cart * r_cart + $w_purchase * r_purchase
            + $w_revenue * r_revenue
        ) as episode_return
    from int_features
    group by sid
)

select
    $dataset_version as dataset_version,
    ep.episode_id,
    ep.user_id,
    ep.split,
    make_timestamp(ep.start_us) as start_ts,
    cast(ep.n_steps as integer) as n_steps,
    cast(ep.n_dropped as integer) as n_dropped,
    r.episode_return as "return",
    case when ep.terminal then 'terminal' else 'timeout' end as ended,
    h.hist_sessions = 0 as is_new_user
from int_episodes as ep
inner join returns as r on ep.sid = r.sid
inner join int_history as h on ep.sid = h.sid
