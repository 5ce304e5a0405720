-- summary_cold_start: how much of a dataset version's test split the train split has not seen.
-- New items: items of test decisions that no train decision shows. New users (in the test
-- window): test users with no train episode. New-user sessions: test episodes with
-- is_new_user (no other session of the user with an event in the lookback before it; the
-- state feature hist_sessions = 0). Other bucket: test decisions on the `other` action.
-- Parameters:
--   $dataset_version  VARCHAR  the dataset version
--   $other_action     INTEGER  action id of the `other` bucket (n_actions - 1)
-- Columns: test_decisions, test_items, new_items, new_item_decisions, test_users, new_users,
--   test_episodes, new_user_episodes, new_user_decisions, other_decisions
with version_rows as (
    select
        t.split,
        t.episode_id,
        t.user_id,
        t.item_id,
        t.action
    from transitions as t
    where t.dataset_version = $dataset_version
),

train_items as (
    select distinct item_id
    from version_rows
    where split = 'train'
),

train_users as (
    select distinct user_id
    from version_rows
    where split = 'train'
),

test_episodes as (
    select
        episode_id,
        is_new_user
    from episodes
    where dataset_version = $dataset_version and split = 'test'
),

test_rows as (
    select
        r.item_id,
        r.user_id,
        r.action,
        ti.item_id is null as is_new_item,
        tu.user_id is null as is_new_in_window,
        coalesce(e.is_new_user, false) as is_new_user
    from version_rows as r
    left join train_items as ti on r.item_id = ti.item_id
    left join train_users as tu on r.user_id = tu.user_id
    left join test_episodes as e on r.episode_id = e.episode_id
    where r.split = 'test'
)

select
    (select count(*) from test_rows) as test_decisions,
    (select count(distinct item_id) from test_rows) as test_items,
    (select count(distinct item_id) from test_rows where is_new_item) as new_items,
    (select count(*) from test_rows where is_new_item) as new_item_decisions,
    (select count(distinct user_id) from test_rows) as test_users,
    (select count(distinct user_id) from test_rows where is_new_in_window) as new_users,
    (select count(*) from test_episodes) as test_episodes,
    (select count(*) from test_episodes where is_new_user) as new_user_episodes,
    (select count(*) from test_rows where is_new_user) as new_user_decisions,
    (select count(*) from test_rows where action = $other_action) as other_decisions
