-- The keys of every source row, read once from _offrec_rows: enough to decide which rows
-- are rejected (is_bad, aux) or duplicates (event_id), plus user_id and ts when sessions are
-- rebuilt. Much smaller than the rows themselves (no prices, items, extra ...).
-- $parameters: none; session variable key_columns VARCHAR[] (the columns to keep)
CREATE OR REPLACE TEMP TABLE _offrec_keys AS
SELECT COLUMNS(getvariable('key_columns'))
FROM _offrec_rows
