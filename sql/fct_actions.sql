-- fct_actions: one row per action id of a dataset version. Named actions carry their item;
-- the final `other` action has item_id NULL, the summed train decisions of its items and
-- n_items = how many distinct items fall in it (a policy choosing `other` shows one of them
-- uniformly at random: pi(item | s) = pi(other | s) / n_items).
-- Parameters:
--   $dataset_version  VARCHAR  version id written into every row
-- Columns: dataset_version, action, item_id, is_other, train_count, n_items
with named as (
    select
        action,
        item_id,
        train_count
    from int_item_actions
    where not is_other
),

other as (
    select
        (select count(*) from named) as action,
        cast(null as varchar) as item_id,
        coalesce(sum(train_count), 0) as train_count,
        count(*) as n_items
    from int_item_actions
    where is_other
)

select
    $dataset_version as dataset_version,
    cast(action as integer) as action,
    item_id,
    false as is_other,
    cast(train_count as bigint) as train_count,
    1 as n_items
from named
union all
select
    $dataset_version as dataset_version,
    cast(action as integer) as action,
    item_id,
    true as is_other,
    cast(train_count as bigint) as train_count,
    cast(n_items as integer) as n_items
from other
