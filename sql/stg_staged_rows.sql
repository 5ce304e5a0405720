-- Staged rows with their 1-based row number in the source file. _offrec_staged was written
-- in file order by one statement into a new table, so its rowid is the 0-based file row.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_stg AS
SELECT
    rowid + 1 AS source_row,
    *
FROM _offrec_staged
