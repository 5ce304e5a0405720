-- Store the CSV lines DuckDB's parser could not split into the header's columns (collected in
-- the temp table _offrec_csv_errors by read_csv(store_rejects)), one row per line.
-- $parameters: $source_file, $load_id, $ingested_at
INSERT INTO rejected_events
SELECT
    $source_file AS source_file,
    NULL AS source_row,
    line AS source_line,
    'malformed_line' AS reason_code,
    string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS reason,
    to_json(trim(any_value(csv_line), chr(10) || chr(13))) AS raw,
    $load_id AS load_id,
    $ingested_at AS ingested_at
FROM _offrec_csv_errors
GROUP BY line
