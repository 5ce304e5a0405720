-- The file behind temp view _offrec_raw plus an all-NULL helper column that stands in for
-- unmapped fields (see stg_events.sql). Rows are numbered later from the staging table's
-- rowid, which follows file order because stg_events.sql runs with preserve_insertion_order.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_src AS
SELECT
    *,
    CAST(NULL AS VARCHAR) AS __offrec_null
FROM _offrec_raw
