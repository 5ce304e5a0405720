-- CSV and JSON: materialise the typed rows once, in file order (ingest runs this with
-- preserve_insertion_order, and the parse stays parallel), so that the table's rowid is the
-- row's position in the file: reading a text file twice would cost a second parse, and
-- numbering rows on the fly (row_number() OVER ()) would make the whole load single-threaded.
-- Beyond [ingest] memory_limit DuckDB spills this table to <warehouse>.tmp/.
-- $parameters: none
CREATE OR REPLACE TEMP TABLE _offrec_staged AS
SELECT * EXCLUDE (source_row)
FROM _offrec_typed
