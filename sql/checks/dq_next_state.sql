-- dq_next_state: next_state is the next row's state in the episode (NULL on the last row)
-- Steps must run 0, 1, 2, ... without gaps. Vectors are compared through their 64-bit hash
-- (of the whole list), taken before the window so that the window sorts narrow rows, not
-- the vectors.
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns the offending transitions.
with hashed as (
    select
        episode_id,
        step,
        event_id,
        next_state is null as next_state_missing,
        hash(state) as state_hash,
        case when next_state is not null then hash(next_state) end as next_hash
    from transitions
    where dataset_version = $dataset_version
),

paired as (
    select
        episode_id,
        step,
        event_id,
        next_state_missing,
        next_hash,
        row_number() over by_step - 1 as expected_step,
        lead(state_hash) over by_step as following_hash
    from hashed
    window by_step as (partition by episode_id order by step)
)

select
    episode_id,
    step,
    event_id,
    expected_step,
    next_state_missing,
    following_hash is null as is_last
from paired
where step <> expected_step
   or next_hash is distinct from following_hash
   or (following_hash is null) <> next_state_missing
