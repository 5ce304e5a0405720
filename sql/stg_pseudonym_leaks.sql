-- The leak guard of [ingest] pseudonymise: among the first $sample rows of the file (temp
-- view _offrec_file, raw values), the share of rows in which each column of offrec_leak_cols
-- (columns that stay as they are) holds the row's raw user id (column offrec_user_col), by
-- _offrec_embeds (stg_pseudonym_embeds.sql). Output: __offrec_n (rows with a user id), then
-- one DOUBLE per checked column, named like it. Ingest refuses the file when a share is high:
-- that column would store raw user ids next to the pseudonyms.
-- $parameters: $sample; session variables offrec_user_col VARCHAR[1],
--   offrec_leak_cols VARCHAR[] (at least one)
SELECT
    count(__offrec_user) AS __offrec_n,
    avg(CAST(_offrec_embeds(
        CAST(COLUMNS(lambda c: list_contains(getvariable('offrec_leak_cols'), c)) AS VARCHAR),
        __offrec_user
    ) AS INTEGER))
FROM (
    SELECT
        *,
        CAST(COLUMNS(getvariable('offrec_user_col')) AS VARCHAR) AS __offrec_user
    FROM _offrec_file
    LIMIT $sample
)
