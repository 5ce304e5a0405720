-- stg_source_rows.sql for Parquet: the reader's own file_row_number (0-based, parallel).
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_src AS
SELECT
    * EXCLUDE (file_row_number),
    file_row_number + 1 AS __offrec_row,
    CAST(NULL AS VARCHAR) AS __offrec_null
FROM _offrec_raw
