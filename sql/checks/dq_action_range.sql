-- dq_action_range: action ids lie in [0, A) and match the item's action
-- A is the version's number of actions; the action must be the one item_actions assigns to
-- the decision's item.
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns the offending transitions.
with space as (
    select count(*) as n_actions
    from actions
    where dataset_version = $dataset_version
),

items as (
    select
        item_id,
        action
    from item_actions
    where dataset_version = $dataset_version
)

select
    t.episode_id,
    t.step,
    t.item_id,
    t.action,
    s.n_actions,
    i.action as expected_action
from transitions as t
cross join space as s
left join items as i on t.item_id = i.item_id
where t.dataset_version = $dataset_version
  and (
      t.action is null
      or t.action < 0
      or t.action >= s.n_actions
      or i.action is null
      or t.action <> i.action
  )
