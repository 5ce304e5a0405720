-- The typed rows of a staged (CSV or JSON) file with their 1-based row numbers: the staging
-- table was filled in file order by one statement, so rowid is the 0-based position.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_rows AS
SELECT
    rowid + 1 AS source_row,
    *
FROM _offrec_staged
