-- The keyed pseudonym of one text value: HMAC-SHA256 (RFC 2104) in hex, cut to
-- offrec_pseudo_hex characters: sha256((K' xor opad) || sha256((K' xor ipad) || v)), where the
-- two 64-byte blocks are session variables ingest sets from the key with bound values
-- (ingest/pseudonymise.py). The key is never SQL text and never stored. Blank values stay as
-- they are (the row rules treat them as missing); NULL stays NULL. A temp macro: it lives in
-- the loading connection only.
-- $parameters: none; session variables offrec_pseudo_ipad, offrec_pseudo_opad BLOB,
--   offrec_pseudo_hex INTEGER
CREATE OR REPLACE TEMP MACRO _offrec_pseudonym(v) AS
CASE
    WHEN trim(v) = '' THEN v
    ELSE left(
        sha256(getvariable('offrec_pseudo_opad')
            || unhex(sha256(getvariable('offrec_pseudo_ipad') || encode(v)))),
        getvariable('offrec_pseudo_hex')
    )
END
