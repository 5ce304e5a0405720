-- Store the CSV lines DuckDB's parser could not split into the header's columns (collected in
-- the temp table _offrec_csv_errors by read_csv(store_rejects)), one row per line.
-- With $redact (ids are pseudonymised) neither the line nor DuckDB's message is kept (either
-- may hold a raw id): the reason says only what went wrong, in which column.
-- $parameters: $source_file, $load_id, $ingested_at, $redact
INSERT INTO rejected_events
SELECT
    $source_file AS source_file,
    NULL AS source_row,
    line AS source_line,
    'malformed_line' AS reason_code,
    CASE
        WHEN $redact THEN string_agg(DISTINCT error_type || coalesce(
            ' (column ' || to_json(column_name) || ')', ''), '; ')
            || ' (line not kept: ids are pseudonymised)'
        ELSE string_agg(DISTINCT error_type || ': ' || error_message, '; ')
    END AS reason,
    CASE
        WHEN NOT $redact THEN to_json(trim(any_value(csv_line), chr(10) || chr(13)))
    END AS raw,
    $load_id AS load_id,
    $ingested_at AS ingested_at
FROM _offrec_csv_errors
GROUP BY line
