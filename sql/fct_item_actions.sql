-- fct_item_actions: every item seen in a dataset version's sessions and the action it maps
-- to (its own id for the top items, the `other` id otherwise).
-- Parameters:
--   $dataset_version  VARCHAR  version id written into every row
-- Columns: dataset_version, item_id, action, is_other, train_count
select
    $dataset_version as dataset_version,
    item_id,
    cast(action as integer) as action,
    is_other,
    cast(train_count as bigint) as train_count
from int_item_actions
