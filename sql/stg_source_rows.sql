-- The file behind temp view _offrec_raw with its 1-based row number in file order and an
-- all-NULL helper column that stands in for unmapped fields (see stg_events.sql). For CSV and
-- JSON DuckDB keeps the scan in file order for row_number() OVER (); Parquet uses
-- stg_source_rows_parquet.sql.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_src AS
SELECT
    *,
    row_number() OVER () AS __offrec_row,
    CAST(NULL AS VARCHAR) AS __offrec_null
FROM _offrec_raw
