-- dq_decision_session: no decision without a session (episode), no episode without its rows
-- Every transition needs a non-empty episode (session) id with an episodes row of the same
-- version, user and split; every episode needs exactly n_steps transitions.
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns the offending episodes / transitions with what is wrong.
with t as (
    select
        episode_id,
        user_id,
        split,
        step
    from transitions
    where dataset_version = $dataset_version
),

e as (
    select
        episode_id,
        user_id,
        split,
        n_steps
    from episodes
    where dataset_version = $dataset_version
),

sizes as (
    select
        episode_id,
        count(*) as n_rows
    from t
    group by episode_id
)

select
    t.episode_id,
    t.step,
    'decision without a session (no episodes row with this id, user and split)' as problem
from t
left join e on t.episode_id = e.episode_id and t.user_id = e.user_id and t.split = e.split
where t.episode_id is null
   or trim(t.episode_id) = ''
   or e.episode_id is null
union all
select
    e.episode_id,
    cast(null as bigint) as step,
    'episode n_steps differs from its number of transitions' as problem
from e
left join sizes as z on e.episode_id = z.episode_id
where coalesce(z.n_rows, 0) <> e.n_steps
