-- The typed rows of a staged (CSV or JSON) file with their 1-based row numbers (the staging
-- table was filled in file order by one statement, so rowid is the 0-based position) and
-- the columns stg_stage_rows.sql narrowed, restored.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_rows AS
SELECT
    rowid + 1 AS source_row,
    * EXCLUDE (event_type, rare),
    CAST(event_type AS VARCHAR) AS event_type,
    CASE WHEN (rare -> 'extra') <> 'null' THEN rare -> 'extra' END AS extra,
    CASE WHEN (rare -> 'aux') <> 'null' THEN rare -> 'aux' END AS aux
FROM _offrec_staged
