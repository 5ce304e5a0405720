-- int_history: per episode, the user's activity in *other* sessions during the lookback
-- [S - L, S), where S is the episode's session start and L the lookback: hist_sessions
-- (distinct sessions with an event in it), hist_purchases (purchase events in it) and
-- hist_spend (their summed price). Every event before S belongs to another session, since S
-- is the session's first event.
-- hist_sessions = sessions that *started* in [S - L, S) (a RANGE window over the user's
-- session starts) + sessions that started before S - L yet have an event in [S - L, S)
-- (rare long sessions, found by a bounded join and checked event by event).
-- Parameters:
--   $lookback_us  BIGINT     L in microseconds
--   $load_start   TIMESTAMP  window start minus the lookback: the earliest event that matters
--   $window_end   TIMESTAMP  exclusive end of the data window
-- Columns: sid, hist_sessions, hist_purchases, hist_spend
with user_stream as (
    select
        user_id,
        sid,
        start_us as t_us,
        1 as is_start,
        0 as is_purchase,
        0.0 as spend
    from int_sessions
    where start_us >= epoch_us($load_start)
    union all
    select
        user_id,
        cast(null as bigint) as sid,
        epoch_us(ts) as t_us,
        0 as is_start,
        1 as is_purchase,
        coalesce(price, 0.0) as spend
    from events
    where event_type = 'purchase'
      and ts >= $load_start
      and ts < $window_end
),

windowed as (
    select
        sid,
        is_start,
        sum(is_start) over lookback as started,
        sum(is_purchase) over lookback as purchases,
        sum(spend) over lookback as spent
    from user_stream
    window lookback as (
        partition by user_id order by t_us
        range between $lookback_us preceding and 1 preceding
    )
),

straddling as (
    select
        ep.sid,
        count(distinct o.sid) as n_sessions
    from int_episodes as ep
    inner join int_sessions as o
        on ep.user_id = o.user_id
        and o.start_us < ep.start_us - $lookback_us
        and o.last_us >= ep.start_us - $lookback_us
    inner join events as ev
        on o.session_id = ev.session_id
        and ev.ts < $window_end
        and epoch_us(ev.ts) >= ep.start_us - $lookback_us
        and epoch_us(ev.ts) < ep.start_us
    group by ep.sid
)

select
    ep.sid,
    coalesce(w.started, 0) + coalesce(st.n_sessions, 0) as hist_sessions,
    coalesce(w.purchases, 0) as hist_purchases,
    coalesce(w.spent, 0.0) as hist_spend
from int_episodes as ep
inner join windowed as w on ep.sid = w.sid and w.is_start = 1
left join straddling as st on ep.sid = st.sid
