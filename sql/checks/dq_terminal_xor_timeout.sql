-- dq_terminal_xor_timeout: an episode's last row is terminal xor timeout, other rows neither
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns the offending transitions.
with marked as (
    select
        episode_id,
        step,
        event_id,
        terminal,
        timeout,
        step = max(step) over (partition by episode_id) as is_last
    from transitions
    where dataset_version = $dataset_version
)

select
    episode_id,
    step,
    event_id,
    is_last,
    terminal,
    timeout
from marked
where terminal is null
   or timeout is null
   or (terminal and timeout)
   or (is_last and not terminal and not timeout)
   or (not is_last and (terminal or timeout))
