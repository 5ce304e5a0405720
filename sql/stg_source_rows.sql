-- The file behind temp view _offrec_raw plus the helper columns stg_events.sql expects: the
-- row number (NULL here: CSV and JSON rows are numbered by their position in the staged
-- table, see stg_stage_rows.sql; Parquet uses stg_source_rows_parquet.sql) and an all-NULL
-- column that stands in for unmapped fields.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_src AS
SELECT
    *,
    CAST(NULL AS BIGINT) AS __offrec_row,
    CAST(NULL AS VARCHAR) AS __offrec_null
FROM _offrec_raw
