-- Store the rows of _offrec_keys that broke a row rule, with the reason and the raw row.
-- $parameters: $source_file, $load_id, $ingested_at
INSERT INTO rejected_events
SELECT
    $source_file AS source_file,
    source_row,
    NULL AS source_line,
    aux ->> 'code' AS reason_code,
    aux ->> 'reason' AS reason,
    aux -> 'raw' AS raw,
    $load_id AS load_id,
    $ingested_at AS ingested_at
FROM _offrec_keys
WHERE is_bad
