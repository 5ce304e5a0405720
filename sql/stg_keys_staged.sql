-- stg_keys.sql for staged (CSV, JSON) files: the rows are already in memory, so the keys are
-- a view over them rather than a second copy.
-- $parameters: none; session variable key_columns VARCHAR[] (the columns to keep)
CREATE OR REPLACE TEMP VIEW _offrec_keys AS
SELECT COLUMNS(getvariable('key_columns'))
FROM _offrec_rows
