-- Source rows of one file that have an event (a row with response events has several).
-- $parameters: $source_file
SELECT count(DISTINCT source_row)
FROM events
WHERE source_file = $source_file
