-- dq_unique_decisions: each decision event appears once (event_id is unique in the version)
-- Duplicated event ids make the decision order within a timestamp ambiguous and joins on
-- event_id ambiguous; de-duplicate the events table (ingest's own check reports them too).
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns one row per duplicated event_id.
select
    event_id,
    count(*) as n_rows,
    min(episode_id) as first_episode,
    max(episode_id) as last_episode
from transitions
where dataset_version = $dataset_version
group by event_id
having count(*) > 1
