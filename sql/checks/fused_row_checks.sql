-- fused_row_checks: offending-row counts of the row-level gates in one pass over transitions
-- The gates dq_propensity_range, dq_finite_features, dq_terminal_xor_timeout, dq_next_state
-- and dq_action_range each read transitions on their own; this query computes all five counts
-- from ONE scan (the FLOAT[] state/next_state columns are read once, hashed before the window)
-- and one window over episodes. Each column is named after its gate and counts exactly the rows
-- that gate's file returns, with the same conditions (a NULL condition counts as false, as in
-- a WHERE clause). The build runs a gate's own file (for
-- its sample rows) only when its count here is not zero.
-- Parameters:
--   $dataset_version  VARCHAR  the version to check
--   $state_dim        INTEGER  expected length of state and next_state
-- Returns one row: dq_propensity_range, dq_finite_features, dq_terminal_xor_timeout,
--   dq_next_state, dq_action_range (counts; NULL when the version has no transitions).
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
),

checked as (
    select
        t.episode_id,
        t.step,
        t.propensity,
        t.terminal,
        t.timeout,
        t.action,
        i.action as expected_action,
        s.n_actions,
        t.next_state is null as next_state_missing,
        hash(t.state) as state_hash,
        case when t.next_state is not null then hash(t.next_state) end as next_hash,
        (
            t.state is null
            or array_length(t.state) <> $state_dim
            or not isfinite(list_sum(t.state))
            or array_length(t.next_state) <> $state_dim
        ) as bad_vector
    from transitions as t
    cross join space as s
    left join items as i on t.item_id = i.item_id
    where t.dataset_version = $dataset_version
),

paired as (
    select
        propensity,
        terminal,
        timeout,
        action,
        expected_action,
        n_actions,
        next_state_missing,
        next_hash,
        bad_vector,
        step,
        row_number() over by_step - 1 as expected_step,
        lead(state_hash) over by_step as following_hash,
        step = max(step) over (partition by episode_id) as is_last
    from checked
    window by_step as (partition by episode_id order by step)
)

select
    sum(case when
        propensity is not null and not (propensity > 0 and propensity <= 1)
    then 1 else 0 end) as dq_propensity_range,
    sum(case when bad_vector then 1 else 0 end) as dq_finite_features,
    sum(case when
        terminal is null
        or timeout is null
        or (terminal and timeout)
        or (is_last and not terminal and not timeout)
        or (not is_last and (terminal or timeout))
    then 1 else 0 end) as dq_terminal_xor_timeout,
    sum(case when
        step <> expected_step
        or next_hash is distinct from following_hash
        or (following_hash is null) <> next_state_missing
    then 1 else 0 end) as dq_next_state,
    sum(case when
        action is null
        or action < 0
        or action >= n_actions
        or expected_action is null
        or action <> expected_action
    then 1 else 0 end) as dq_action_range
from paired
