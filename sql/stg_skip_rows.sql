-- Source rows not to load: rejected (is_bad) or duplicates.
-- $parameters: none
CREATE OR REPLACE TEMP TABLE _offrec_skip AS
SELECT source_row FROM _offrec_keys WHERE is_bad
UNION ALL
SELECT source_row FROM _offrec_dup
