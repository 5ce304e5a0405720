-- Load the valid, non-duplicate rows of _offrec_stg into `events`. Rows without a source
-- session id get theirs from _offrec_sessions (empty when the source has session ids).
-- $parameters: $source_file, $ingested_at
INSERT INTO events BY NAME
SELECT
    s.event_id,
    s.ts,
    s.user_id,
    coalesce(s.session_id, ss.session_id) AS session_id,
    s.event_type,
    s.item_id,
    s.position,
    s.propensity,
    s.price,
    s.request_id,
    CASE WHEN (s.aux -> 'extra') <> 'null' THEN s.aux -> 'extra' END AS extra,
    $source_file AS source_file,
    s.source_row,
    $ingested_at AS ingested_at
FROM _offrec_stg AS s
ANTI JOIN _offrec_dup AS d ON s.source_row = d.source_row
LEFT JOIN _offrec_sessions AS ss ON s.source_row = ss.source_row
WHERE NOT s.is_bad
