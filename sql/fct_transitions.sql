-- fct_transitions: the (state, action, reward, next_state) rows of a dataset version. The
-- state vector is packed in the order of docs/design.md section 3 / sql/features.py:
--   step | prev_action_1..k | last_item_1..k | n_view n_click n_add_to_cart n_purchase |
--   secs_since_session_start secs_since_prev_event | hour_of_day day_of_week | position |
--   hist_sessions hist_purchases hist_spend | bag_0..bag_{A-1} (only when $bag_len = A)
-- prev_action_j / last_item_j is the j-th most recent id, $none (= A) when there are fewer
-- than j. The one-hot bag depends only on the list of recent items, and few distinct lists
-- occur (thousands against millions of decisions), so it is computed once per distinct list
-- and joined. next_state is the next decision's state in the episode (NULL on its last row).
-- The build runs this step in batches of whole sessions so that each window fits in memory.
-- Parameters:
--   $sid_lo, $sid_hi  BIGINT   the batch: sessions with $sid_lo < sid <= $sid_hi
--   $dataset_version  VARCHAR  version id written into every row
--   $last_k           INTEGER  k
--   $none             INTEGER  padding id (= number of actions A)
--   $bag_len          INTEGER  A for item_encoding 'onehot', 0 for 'index'
--   $w_click, $w_cart, $w_purchase, $w_revenue  DOUBLE  reward weights
with bags as (
    select
        recent_items,
        list_transform(
            range($bag_len),
            lambda a: array_length(list_filter(recent_items, lambda x: x = a))
        ) as bag
    from (
        select distinct recent_items
        from int_features
        where recent_items is not null and sid > $sid_lo and sid <= $sid_hi
    ) as lists
),

vectors as (
    select
        f.*,
        cast(list_concat(
            list_value(f.f_step),
            list_transform(
                range($last_k),
                lambda j: case
                    when j < coalesce(array_length(f.prev_actions), 0)
                        then f.prev_actions[cast(array_length(f.prev_actions) - j as integer)]
                    else $none
                end
            ),
            list_transform(
                range($last_k),
                lambda j: case
                    when j < coalesce(array_length(f.recent_items), 0)
                        then f.recent_items[cast(array_length(f.recent_items) - j as integer)]
                    else $none
                end
            ),
            list_value(
                f.f_n_view,
                f.f_n_click,
                f.f_n_add_to_cart,
                f.f_n_purchase,
                f.f_secs_since_session_start,
                f.f_secs_since_prev_event,
                f.f_hour_of_day,
                f.f_day_of_week,
                f.f_position,
                f.f_hist_sessions,
                f.f_hist_purchases,
                f.f_hist_spend
            ),
            coalesce(b.bag, list_transform(range($bag_len), lambda a: 0))
        ) as float []) as state
    from int_features as f
    left join bags as b on f.recent_items = b.recent_items
    where f.sid > $sid_lo and f.sid <= $sid_hi
)

select
    $dataset_version as dataset_version,
    split,
    episode_id,
    user_id,
    step,
    decision_ts,
    event_id,
    item_id,
    action,
    position,
    propensity,
    $w_click * r_click + $w_cart * r_cart + $w_purchase * r_purchase
    + $w_revenue * r_revenue as reward,
    r_click,
    r_cart,
    r_purchase,
    r_revenue,
    is_last and episode_terminal as terminal,
    is_last and not episode_terminal as timeout,
    state,
    lead(state) over (partition by sid order by step) as next_state
from vectors
