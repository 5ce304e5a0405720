-- Valid rows of _offrec_keys that repeat an event already seen: a later row with the same
-- event_id in this file (the first occurrence is kept), or an event_id already in `events`
-- (loaded from another file; this file's own earlier rows were deleted before this runs).
-- A row without an event_id column got the hash of its full source row, so "same event id"
-- also covers "same full row".
-- Within the file, candidates are found by grouping 64-bit hashes of the ids (a much smaller
-- hash table than grouping the strings), then confirmed on the strings themselves.
-- $parameters: none
CREATE OR REPLACE TEMP TABLE _offrec_dup AS
WITH repeated_hashes AS (
    SELECT hash(event_id) AS h
    FROM _offrec_keys
    WHERE NOT is_bad
    GROUP BY h
    HAVING count(*) > 1
),

candidates AS (
    SELECT s.source_row, s.event_id
    FROM _offrec_keys AS s
    SEMI JOIN repeated_hashes AS r ON hash(s.event_id) = r.h
    WHERE NOT s.is_bad
)

SELECT source_row
FROM candidates
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY source_row) > 1

UNION

SELECT s.source_row
FROM _offrec_keys AS s
INNER JOIN events AS e ON s.event_id = e.event_id
WHERE NOT s.is_bad
