-- dq_finite_features: states are present, of the version's dimension, and finite
-- Every state must have state_dim values, none NaN or +-inf; every next_state state_dim
-- values. A vector of float32 values is all finite exactly when its sum in double precision
-- is finite. next_state values need no sum of their own: dq_next_state checks that each
-- next_state equals the following row's state, which this gate checks.
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
--   $state_dim        INTEGER  expected length of state and next_state
-- Returns the offending transitions.
select
    episode_id,
    step,
    event_id,
    array_length(state) as state_len,
    array_length(next_state) as next_state_len,
    list_sum(state) as state_sum
from transitions
where dataset_version = $dataset_version
  and (
      state is null
      or array_length(state) <> $state_dim
      or not isfinite(list_sum(state))
      or array_length(next_state) <> $state_dim
  )
