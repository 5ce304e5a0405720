-- int_input_fingerprint: what the build reads, summarised so that any change to the events
-- table changes the dataset version: row count, latest event time and an order-independent
-- hash of every column the build uses.
-- Parameters: none
-- Columns: n_events, max_ts, fingerprint
select
    count(*) as n_events,
    max(ts) as max_ts,
    cast(coalesce(sum(hash(
        event_id, ts, user_id, session_id, event_type, item_id, position, propensity, price,
        request_id
    ) % 1000000007), 0) as bigint) as fingerprint
from events
