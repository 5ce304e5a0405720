-- Events that break the warehouse contract (docs/design.md section 2): the row rules ingest
-- enforces while staging (sql/stg_events.sql). Must return no rows.
-- $parameters: none
SELECT source_file, source_row, event_id, problem
FROM (
    SELECT
        source_file,
        source_row,
        event_id,
        CASE
            WHEN trim(event_id) = '' THEN 'empty event_id'
            WHEN trim(user_id) = '' THEN 'empty user_id'
            WHEN trim(session_id) = '' THEN 'empty session_id'
            WHEN trim(item_id) = '' THEN 'empty item_id'
            WHEN event_type NOT IN ('impression', 'view', 'click', 'add_to_cart', 'purchase')
                THEN 'unknown event_type ' || event_type
            WHEN ts < TIMESTAMP '1970-01-01' OR ts >= TIMESTAMP '2200-01-01'
                THEN 'ts outside 1970..2199'
            WHEN position < 0 THEN 'negative position'
            WHEN isnan(propensity) OR propensity <= 0 OR propensity > 1
                THEN 'propensity outside (0, 1]'
            WHEN NOT isfinite(price) OR price < 0 THEN 'price not a finite number >= 0'
            WHEN source_row IS NULL OR source_row < 1 THEN 'no source_row'
        END AS problem
    FROM events
)
WHERE problem IS NOT NULL
ORDER BY source_file, source_row
LIMIT 20
