-- The source file (temp view _offrec_file) with the columns listed in offrec_pseudo_cols
-- replaced by their pseudonyms (text), as temp view _offrec_raw: every later step (typed rows,
-- extra, rejected rows' raw JSON, row-hash event ids, sessions) only ever sees pseudonyms.
-- The pseudonymised columns move to the end of the row; columns are matched by name.
-- $parameters: none; session variable offrec_pseudo_cols VARCHAR[] (exact file spellings,
--   at least one); macro _offrec_pseudonym (stg_pseudonym_macro.sql)
CREATE OR REPLACE TEMP VIEW _offrec_raw AS
SELECT
    COLUMNS(lambda c: NOT list_contains(getvariable('offrec_pseudo_cols'), c)),
    _offrec_pseudonym(
        CAST(COLUMNS(lambda c: list_contains(getvariable('offrec_pseudo_cols'), c)) AS VARCHAR)
    )
FROM _offrec_file
