-- int_item_actions: the action space. The $top_n items with the most decisions in the train
-- split (ties: item_id ascending) get actions 0 .. n_top-1 in that order; every other item seen
-- in the covered sessions (any split, any event type) maps to the `other` action n_top.
-- Parameters:
--   $top_n  INTEGER  size of the named part of the action space
-- Columns: item_id, action, is_other, train_count (decisions on the item in train)
with train_counts as (
    select
        d.item_id,
        count(*) as train_count
    from int_decisions as d
    inner join int_episodes as e on d.sid = e.sid
    where e.split = 'train'
    group by d.item_id
),

ranked as (
    select
        item_id,
        train_count,
        row_number() over (order by train_count desc, item_id) - 1 as item_rank
    from train_counts
),

n_top as (
    select count(*) as n_top
    from ranked
    where item_rank < $top_n
),

seen as (
    select distinct item_id
    from int_events
)

select
    s.item_id,
    case when r.item_rank < $top_n then r.item_rank else n.n_top end as action,
    coalesce(r.item_rank >= $top_n, true) as is_other,
    coalesce(r.train_count, 0) as train_count
from seen as s
left join ranked as r on s.item_id = r.item_id
cross join n_top as n
