-- dq_next_state: next_state is the next row's state in the episode (NULL on the last row)
-- Steps must run 0, 1, 2, ... without gaps. Vectors are compared through their 64-bit hash
-- (of the whole list), which keeps the check cheap.
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns the offending transitions.
with paired as (
    select
        episode_id,
        step,
        event_id,
        row_number() over by_step - 1 as expected_step,
        next_state is null as next_state_missing,
        case when next_state is not null then hash(next_state) end as next_hash,
        lead(hash(state)) over by_step as following_hash
    from transitions
    where dataset_version = $dataset_version
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
