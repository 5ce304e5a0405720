-- dq_propensity_range: logged propensities lie in (0, 1] (NULL = unknown is allowed)
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
-- Returns the offending transitions.
select
    episode_id,
    step,
    event_id,
    item_id,
    propensity
from transitions
where dataset_version = $dataset_version
  and propensity is not null
  and not (propensity > 0 and propensity <= 1)
