-- int_episodes: one row per session with at least one kept decision: its split (by session
-- start, whole sessions only), size, decisions dropped by the cap and whether it truly ended.
-- Parameters:
--   $watermark_us         BIGINT   data watermark: latest event time seen, capped at the window
--                                  end
--   $session_gap_us       BIGINT   a session is over once this long passed without events
--   $use_split_dates      BOOLEAN  split by $validation_start_us / $test_start_us, else by
--                                  fractions
--   $validation_start_us  BIGINT   sessions starting at/after it are validation (date split)
--   $test_start_us        BIGINT   sessions starting at/after it are test (date split)
--   $train_frac           DOUBLE   the first round(train_frac * n) episodes by start are train
--   $validation_frac      DOUBLE   up to round((train_frac + validation_frac) * n) validation
-- Columns: sid, episode_id (= session_id), user_id, start_us, last_us, n_steps, n_dropped,
--   split, terminal (not cut by the cap or the window, and the last event more than the gap
--   before the watermark)
with kept as (
    select
        sid,
        count(*) as n_steps
    from int_decisions
    group by sid
),

all_decisions as (
    select
        sid,
        count(*) as n_decisions
    from int_events
    where is_decision
    group by sid
),

ordered as (
    select
        k.sid,
        s.session_id,
        s.user_id,
        s.start_us,
        s.last_us,
        s.cut_by_window,
        k.n_steps,
        a.n_decisions,
        row_number() over (order by s.start_us, s.session_id) - 1 as start_rank,
        count(*) over () as n_episodes
    from kept as k
    inner join all_decisions as a on k.sid = a.sid
    inner join int_sessions as s on k.sid = s.sid
)

select
    sid,
    session_id as episode_id,
    user_id,
    start_us,
    last_us,
    n_steps,
    n_decisions - n_steps as n_dropped,
    case
        when $use_split_dates then
            case
                when start_us < $validation_start_us then 'train'
                when start_us < $test_start_us then 'validation'
                else 'test'
            end
        when start_rank < round($train_frac * n_episodes) then 'train'
        when start_rank < round(($train_frac + $validation_frac) * n_episodes) then 'validation'
        else 'test'
    end as split,
    (
        n_decisions = n_steps
        and not cut_by_window
        and $watermark_us - last_us > $session_gap_us
    ) as terminal
from ordered
