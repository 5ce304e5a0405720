-- Users whose events from $source_file are about to be replaced: their sessions are rebuilt
-- even if the new version of the file no longer has them.
-- $parameters: $source_file
CREATE OR REPLACE TEMP TABLE _offrec_gone_users AS
SELECT DISTINCT user_id
FROM events
WHERE source_file = $source_file
