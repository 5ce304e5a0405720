-- Load the valid, non-duplicate rows of the file into `events`: the typed rows (a second read
-- of a Parquet file, the staged rows of a CSV/JSON file) minus the rows the keys marked bad
-- or duplicate. Rows without a source session get theirs from _offrec_sessions (empty when
-- the source has session ids).
-- $parameters: $source_file, $ingested_at
INSERT INTO events BY NAME
SELECT
    t.event_id,
    t.ts,
    t.user_id,
    coalesce(t.session_id, ss.session_id) AS session_id,
    t.event_type,
    t.item_id,
    t.position,
    t.propensity,
    t.price,
    t.request_id,
    t.extra,
    $source_file AS source_file,
    t.source_row,
    $ingested_at AS ingested_at
FROM _offrec_rows AS t
ANTI JOIN _offrec_skip AS k ON t.source_row = k.source_row
LEFT JOIN _offrec_sessions AS ss ON t.source_row = ss.source_row
