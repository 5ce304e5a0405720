-- Rename, cast, map and validate the rows of one source file (temp view _offrec_src) as the
-- temp view _offrec_typed: one row per source row with its 1-based source_row, canonical
-- values, unmapped columns as JSON (extra), is_bad, and `aux`: {code, reason, raw} for a bad
-- row, {responses} for a good row that emits response events, else NULL.
--
-- It is a view, read twice: once into the small keys table (stg_keys.sql) that decides which
-- rows are rejected or duplicates, once by the insert (stg_insert_events.sql), so no copy of
-- the whole file is ever held in memory. Its settings are session variables that ingest sets
-- with bound values (SET VARIABLE x = $x) before creating it; getvariable() is
-- resolved when the view is bound.
--
-- Source columns are selected by *bound names* (COLUMNS(list) with a one-element list); an
-- unmapped field selects the all-NULL helper column __offrec_null. Naive timestamps are read
-- in the session TimeZone, which ingest sets to the mapping's ts_timezone.
--
-- $parameters: none; session variables (getvariable('<name>')):
--   c_event_id c_ts c_user_id c_session_id c_event_type c_item_id c_position
--   c_propensity c_price c_request_id   VARCHAR[1]  source column, or ['__offrec_null']
--   k_user_id k_session_id k_event_type k_item_id   VARCHAR  constant value or NULL
--   row_user_id row_session_id row_request_id   BOOLEAN  use the row's event_id
--   ts_kind        'text' | 'number' | 'native' | 'native_tz'  (type of the source ts column)
--   tz_is_utc      BOOLEAN  the mapping's ts_timezone is UTC
--   ts_unit        'auto' | 'iso' | 's' | 'ms' | 'us'
--   ts_format      strptime format for text timestamps (used when has_ts_format)
--   has_ts_format  BOOLEAN
--   position_base  0 | 1
--   et_from et_to  VARCHAR[]  lower-cased source event type values and their canonical types
--   c_responses    VARCHAR[]  response flag columns plus '__offrec_null'
--   resp_cols resp_types  VARCHAR[]  flag columns and the event type each one emits
--   has_responses  BOOLEAN
--   not_extra      VARCHAR[]  columns not kept in `extra`;  has_extra BOOLEAN
CREATE OR REPLACE TEMP VIEW _offrec_typed AS
WITH src AS (
    SELECT
        __offrec_row AS source_row,
        CAST(COLUMNS(getvariable('c_event_id')) AS VARCHAR) AS event_id_text,
        COLUMNS(getvariable('c_ts')) AS ts_raw,
        CAST(COLUMNS(getvariable('c_user_id')) AS VARCHAR) AS user_id_text,
        CAST(COLUMNS(getvariable('c_session_id')) AS VARCHAR) AS session_id_text,
        CAST(COLUMNS(getvariable('c_event_type')) AS VARCHAR) AS event_type_text,
        CAST(COLUMNS(getvariable('c_item_id')) AS VARCHAR) AS item_id_text,
        COLUMNS(getvariable('c_position')) AS position_raw,
        COLUMNS(getvariable('c_propensity')) AS propensity_raw,
        COLUMNS(getvariable('c_price')) AS price_raw,
        CAST(COLUMNS(getvariable('c_request_id')) AS VARCHAR) AS request_id_text,
        CASE
            WHEN getvariable('has_responses')
                THEN to_json(struct_pack(*COLUMNS(getvariable('c_responses'))))
        END AS flags_json,
        CASE
            WHEN getvariable('has_extra')
            THEN to_json(struct_pack(
                *COLUMNS(lambda c: NOT list_contains(getvariable('not_extra'), c))
            ))
        END AS extra,
        struct_pack(*COLUMNS(lambda c: NOT starts_with(c, '__offrec_'))) AS raw_row
    FROM _offrec_src
),

texts AS (
    -- ids are kept exactly as the source wrote them; an empty or all-blank value is missing.
    -- (Nested CASE, not AND/OR, so trim() only runs on values that start with a blank.)
    SELECT
        *,
        CASE
            WHEN event_id_text = '' THEN NULL
            WHEN event_id_text NOT LIKE ' %' THEN event_id_text
            WHEN trim(event_id_text) = '' THEN NULL
            ELSE event_id_text
        END AS event_id_in,
        CASE
            WHEN user_id_text = '' THEN NULL
            WHEN user_id_text NOT LIKE ' %' THEN user_id_text
            WHEN trim(user_id_text) = '' THEN NULL
            ELSE user_id_text
        END AS user_id_in,
        CASE
            WHEN session_id_text = '' THEN NULL
            WHEN session_id_text NOT LIKE ' %' THEN session_id_text
            WHEN trim(session_id_text) = '' THEN NULL
            ELSE session_id_text
        END AS session_id_in,
        CASE
            WHEN item_id_text = '' THEN NULL
            WHEN item_id_text NOT LIKE ' %' THEN item_id_text
            WHEN trim(item_id_text) = '' THEN NULL
            ELSE item_id_text
        END AS item_id_in,
        CASE
            WHEN request_id_text = '' THEN NULL
            WHEN request_id_text NOT LIKE ' %' THEN request_id_text
            WHEN trim(request_id_text) = '' THEN NULL
            ELSE request_id_text
        END AS request_id_in,
        NULLIF(lower(trim(event_type_text)), '') AS event_type_in
    FROM src
),

typed AS (
    SELECT
        *,
        -- no event id: the hash of the full source row, so an identical row is a duplicate
        coalesce(event_id_in, 'r' || left(md5(CAST(to_json(raw_row) AS VARCHAR)), 24))
            AS event_id,
        CASE
            WHEN getvariable('ts_kind') = 'number'
                OR (getvariable('ts_kind') = 'text' AND getvariable('ts_unit') IN ('s', 'ms', 'us'))
                THEN TRY_CAST(ts_raw AS DOUBLE)
            WHEN getvariable('ts_kind') <> 'text' OR getvariable('ts_unit') <> 'auto'
                OR getvariable('has_ts_format') THEN NULL
            -- auto: text that cannot be a date (no ':', no '-' after the sign) may be an epoch
            WHEN contains(CAST(ts_raw AS VARCHAR), ':') THEN NULL
            WHEN contains(substr(CAST(ts_raw AS VARCHAR), 2), '-') THEN NULL
            ELSE TRY_CAST(ts_raw AS DOUBLE)
        END AS ts_num,
        coalesce(
            getvariable('k_event_type'),
            getvariable('et_to')[list_position(getvariable('et_from'), event_type_in)]
        )
            AS event_type,
        coalesce(getvariable('k_item_id'), item_id_in) AS item_id,
        TRY_CAST(position_raw AS DOUBLE) AS position_num,
        TRY_CAST(propensity_raw AS DOUBLE) AS propensity,
        TRY_CAST(price_raw AS DOUBLE) AS price,
        CASE
            WHEN getvariable('has_responses')
            THEN list_transform(getvariable('resp_cols'), lambda k: lower(trim(flags_json ->> k)))
        END AS flags_in
    FROM texts
),

epochs AS (
    -- numbers are epochs: seconds, milliseconds or microseconds per ts_unit; with 'auto',
    -- |v| < 1e11 is seconds, < 1e14 milliseconds, otherwise microseconds
    SELECT
        *,
        ts_num * CASE
            WHEN getvariable('ts_unit') = 's' THEN 1e6
            WHEN getvariable('ts_unit') = 'ms' THEN 1e3
            WHEN getvariable('ts_unit') = 'us' THEN 1.0
            WHEN abs(ts_num) < 1e11 THEN 1e6
            WHEN abs(ts_num) < 1e14 THEN 1e3
            ELSE 1.0
        END AS ts_us,
        list_transform(flags_in, lambda f: CASE
            WHEN f IS NULL OR f IN ('', 'false', 'f', 'no', 'n') THEN false
            WHEN f IN ('true', 't', 'yes', 'y') THEN true
            WHEN TRY_CAST(f AS DOUBLE) = 0 THEN false
            WHEN TRY_CAST(f AS DOUBLE) > 0 THEN true
        END) AS flags
    FROM typed
),

ids AS (
    SELECT
        *,
        -- TIMESTAMPTZ -> its UTC instant; naive TIMESTAMP/DATE and text without an offset are
        -- in the session TimeZone (the mapping's ts_timezone). make_timestamp(epoch_us(...))
        -- takes the UTC instant without a second time zone conversion.
        CASE
            WHEN getvariable('ts_kind') = 'native' AND getvariable('tz_is_utc')
                THEN TRY_CAST(ts_raw AS TIMESTAMP)
            WHEN getvariable('ts_kind') IN ('native', 'native_tz')
                THEN make_timestamp(epoch_us(TRY_CAST(ts_raw AS TIMESTAMPTZ)))
            WHEN ts_num IS NOT NULL
                THEN CASE
                    WHEN isfinite(ts_us) AND abs(ts_us) < 9e18
                    THEN make_timestamp(CAST(round(ts_us) AS BIGINT))
                END
            WHEN getvariable('ts_kind') = 'number' OR getvariable('ts_unit') IN ('s', 'ms', 'us')
                THEN NULL
            WHEN getvariable('has_ts_format')
                THEN make_timestamp(epoch_us(CAST(
                    try_strptime(trim(CAST(ts_raw AS VARCHAR)), getvariable('ts_format'))
                    AS TIMESTAMPTZ)))
            ELSE make_timestamp(epoch_us(TRY_CAST(CAST(ts_raw AS VARCHAR) AS TIMESTAMPTZ)))
        END AS ts,
        coalesce(
            getvariable('k_user_id'), CASE WHEN getvariable('row_user_id') THEN event_id END,
            user_id_in
        ) AS user_id,
        coalesce(
            getvariable('k_session_id'), CASE WHEN getvariable('row_session_id') THEN event_id END,
            session_id_in
        ) AS session_id,
        coalesce(
            CASE WHEN getvariable('row_request_id') THEN event_id END,
            request_id_in,
            CASE WHEN getvariable('has_responses') THEN event_id END
        ) AS request_id,
        CASE
            WHEN position_num = floor(position_num)
                AND position_num - getvariable('position_base') >= 0 AND position_num < 2147483647
            THEN CAST(position_num AS INTEGER) - getvariable('position_base')
        END AS position,
        -- "given": the source had a non-blank value. CASE (not AND/OR) so that the text
        -- conversion only runs for the rare rows whose value did not parse.
        CASE
            WHEN position_raw IS NULL THEN false
            WHEN position_num IS NOT NULL THEN true
            ELSE trim(CAST(position_raw AS VARCHAR)) <> ''
        END AS position_given,
        CASE
            WHEN propensity_raw IS NULL THEN false
            WHEN propensity IS NOT NULL THEN true
            ELSE trim(CAST(propensity_raw AS VARCHAR)) <> ''
        END AS propensity_given,
        CASE
            WHEN price_raw IS NULL THEN false
            WHEN price IS NOT NULL THEN true
            ELSE trim(CAST(price_raw AS VARCHAR)) <> ''
        END AS price_given
    FROM epochs
),

checked AS (
    SELECT
        *,
        CASE
            WHEN ts_raw IS NULL THEN true
            WHEN ts IS NOT NULL THEN false
            ELSE trim(CAST(ts_raw AS VARCHAR)) = ''
        END AS no_ts,
        ts IS NULL OR ts < TIMESTAMP '1970-01-01' OR ts >= TIMESTAMP '2200-01-01' AS bad_ts,
        user_id IS NULL AS no_user,
        item_id IS NULL AS no_item,
        event_type IS NULL AS bad_type,
        session_id IS NULL AND getvariable('c_session_id')[1] <> '__offrec_null' AS no_session,
        position_given AND position IS NULL AS bad_position,
        propensity_given
            AND (propensity IS NULL OR isnan(propensity) OR propensity <= 0 OR propensity > 1)
            AS bad_propensity,
        price_given AND (price IS NULL OR NOT isfinite(price) OR price < 0) AS bad_price,
        coalesce(len(list_filter(flags, lambda f: f IS NULL)) > 0, false) AS bad_flag
    FROM ids
),

flagged AS (
    SELECT
        *,
        no_ts OR bad_ts OR no_user OR no_item OR bad_type OR no_session OR bad_position
            OR bad_propensity OR bad_price OR bad_flag AS is_bad
    FROM checked
),

judged AS (
    SELECT
        *,
        CASE WHEN is_bad THEN concat_ws('; ',
            CASE
                WHEN no_ts THEN 'ts is empty'
                WHEN bad_ts AND ts IS NULL
                    THEN format('ts {} is not a timestamp',
                                to_json(left(CAST(ts_raw AS VARCHAR), 80)))
                WHEN bad_ts
                    THEN format('ts {} is outside 1970..2199 (wrong ts_unit?)',
                                to_json(left(CAST(ts_raw AS VARCHAR), 80)))
            END,
            CASE WHEN no_user THEN 'user_id is empty' END,
            CASE WHEN no_item THEN 'item_id is empty' END,
            CASE
                WHEN bad_type AND event_type_in IS NULL THEN 'event_type is empty'
                WHEN bad_type THEN format(
                    'event_type {} is not mapped to an event type; add it to [event_types]',
                    to_json(left(event_type_in, 80)))
            END,
            CASE WHEN no_session THEN 'session_id is empty' END,
            CASE WHEN bad_position THEN format(
                'position {} is not a whole number >= {}',
                to_json(left(CAST(position_raw AS VARCHAR), 80)), getvariable('position_base'))
            END,
            CASE WHEN bad_propensity THEN format(
                'propensity {} is not a probability in (0, 1]',
                to_json(left(CAST(propensity_raw AS VARCHAR), 80)))
            END,
            CASE WHEN bad_price THEN format(
                'price {} is not a number >= 0', to_json(left(CAST(price_raw AS VARCHAR), 80)))
            END,
            CASE WHEN bad_flag THEN format(
                'response flag(s) {} are not 0/1 or true/false',
                to_json(list_filter(
                    list_transform(flags, lambda f, i: CASE
                        WHEN f IS NULL
                            THEN getvariable('resp_cols')[i] || '=' || coalesce(flags_in[i], '')
                    END),
                    lambda x: x IS NOT NULL)))
            END
        ) END AS reject_reason,
        CASE
            WHEN getvariable('has_responses')
            THEN list_filter(
                list_transform(flags,
                               lambda f, i: CASE WHEN f THEN getvariable('resp_types')[i] END),
                lambda t: t IS NOT NULL)
        END AS response_types,
        CASE
            WHEN NOT is_bad THEN NULL
            WHEN no_ts OR bad_ts THEN 'bad_ts'
            WHEN no_user THEN 'missing_user_id'
            WHEN no_item THEN 'missing_item_id'
            WHEN bad_type THEN 'unknown_event_type'
            WHEN no_session THEN 'missing_session_id'
            WHEN bad_position THEN 'bad_position'
            WHEN bad_propensity THEN 'bad_propensity'
            WHEN bad_price THEN 'bad_price'
            WHEN bad_flag THEN 'bad_response_flag'
        END AS reject_code
    FROM flagged
)

SELECT
    source_row,
    event_id,
    ts,
    user_id,
    session_id,
    event_type,
    item_id,
    position,
    CASE WHEN propensity_given THEN propensity END AS propensity,
    CASE WHEN price_given THEN price END AS price,
    request_id,
    extra,
    is_bad,
    -- one JSON value that is NULL for most rows, so the keys table (stg_keys.sql) stays
    -- small: why a bad row was rejected (and the row itself), or a good row's responses
    CASE
        WHEN is_bad
            THEN json_object('code', reject_code, 'reason', reject_reason,
                             'raw', to_json(raw_row))
        WHEN len(response_types) > 0 THEN json_object('responses', response_types)
    END AS aux
FROM judged
