-- Remove the rejected rows of an earlier version of a file that is being replaced.
-- $parameters: $source_file
DELETE FROM rejected_events
WHERE source_file = $source_file
