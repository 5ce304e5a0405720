-- summary_item_categories: the category of each named (top-N) item of a dataset version, when
-- the raw events carry one. Ingest keeps unmapped source columns in events.extra (JSON); a
-- key `category`, `category_id` or `categoryid` there is the item's category. An item seen
-- with several categories gets its most frequent one (ties: the smallest). Items without any
-- are absent.
-- Parameters:
--   $dataset_version  VARCHAR  the dataset version
-- Columns: item_id, category
with named_items as (
    select item_id
    from item_actions
    where dataset_version = $dataset_version and not is_other
),

tagged as (
    select
        e.item_id,
        coalesce(
            json_extract_string(e.extra, '$.category'),
            json_extract_string(e.extra, '$.category_id'),
            json_extract_string(e.extra, '$.categoryid')
        ) as category
    from events as e
    inner join named_items as n on e.item_id = n.item_id
    where e.extra is not null
),

counted as (
    select
        item_id,
        category,
        count(*) as n_events
    from tagged
    where category is not null and category <> ''
    group by item_id, category
),

ranked as (
    select
        item_id,
        category,
        row_number() over (partition by item_id order by n_events desc, category) as k
    from counted
)

select
    item_id,
    category
from ranked
where k = 1
order by item_id
