-- Remove the events of an earlier version of a file that is being replaced.
-- $parameters: $source_file
DELETE FROM events
WHERE source_file = $source_file
