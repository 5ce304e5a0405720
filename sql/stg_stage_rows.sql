-- CSV and JSON: materialise the typed rows once, in file order (ingest runs this with
-- preserve_insertion_order, and the parse stays parallel), so that the table's rowid is the
-- row's position in the file: reading a text file twice would cost a second parse, and
-- numbering rows on the fly (row_number() OVER ()) would make the whole load single-threaded.
-- The table lives in memory (spilled to <warehouse>.tmp/ beyond memory_limit), so it is kept
-- narrow: the event type as a 1-byte ENUM, and the rarely set extra/aux folded into one JSON
-- value that is NULL for most rows (an in-memory column costs its width on every row).
-- stg_rows_staged.sql unfolds both.
-- $parameters: none
CREATE OR REPLACE TEMP TABLE _offrec_staged AS
SELECT
    * EXCLUDE (source_row, event_type, extra, aux),
    CAST(event_type AS ENUM('impression', 'view', 'click', 'add_to_cart', 'purchase'))
        AS event_type,
    CASE
        WHEN extra IS NOT NULL OR aux IS NOT NULL
        THEN json_object('extra', extra, 'aux', aux)
    END AS rare
FROM _offrec_typed
