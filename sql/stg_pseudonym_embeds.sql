-- Does text v hold the raw user id u: equal to it, or one of its alphanumeric tokens (the
-- simulator's session id 'u0000042-s0003' holds user 'u0000042')? NULL when either is
-- missing. Used by stg_pseudonym_leaks.sql on values before pseudonymisation.
-- $parameters: none
CREATE OR REPLACE TEMP MACRO _offrec_embeds(v, u) AS
CASE
    WHEN v IS NULL OR u IS NULL OR trim(u) = '' THEN NULL
    ELSE v = u OR list_contains(string_split_regex(v, '[^A-Za-z0-9]+'), u)
END
