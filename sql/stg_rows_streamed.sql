-- The typed rows of a Parquet file: the typed view itself (rows carry the reader's
-- file_row_number), read once for the keys and once by the insert.
-- $parameters: none
CREATE OR REPLACE TEMP VIEW _offrec_rows AS
SELECT *
FROM _offrec_typed
