-- The response events of the rows just loaded: one per set response flag ([responses] in
-- the mapping), id '<event_id>:<type>', with the row's ts, user, session, item, price and
-- request_id; no position or propensity (those describe the impression); extra stays on the
-- impression. Reads the loaded rows back from `events` (so sessions and dedup agree) and
-- their response types from the keys table.
-- $parameters: $source_file
INSERT INTO events BY NAME
SELECT
    e.event_id || ':' || r.response_type AS event_id,
    e.ts,
    e.user_id,
    e.session_id,
    r.response_type AS event_type,
    e.item_id,
    NULL AS position,
    NULL AS propensity,
    e.price,
    e.request_id,
    NULL AS extra,
    e.source_file,
    e.source_row,
    e.ingested_at
FROM events AS e
INNER JOIN _offrec_keys AS s ON e.source_row = s.source_row
CROSS JOIN unnest(CAST(s.aux -> 'responses' AS VARCHAR[])) AS r(response_type)
WHERE e.source_file = $source_file
    AND (s.aux -> 'responses') <> 'null'
