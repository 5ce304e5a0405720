-- How this warehouse pseudonymises ids ([ingest] pseudonymise), one row or none: the fields
-- (lower-cased, sorted), a keyed fingerprint of the key (HMAC(key, "offrec pseudonym key
-- check"), 16 hex: it identifies the key without revealing it), the pseudonym length. Ingest
-- refuses a load whose fields or key differ, so raw and pseudonymised ids never mix.
-- $parameters: none
CREATE TABLE IF NOT EXISTS ingest_pseudonymisation (
    fields VARCHAR[] NOT NULL,
    key_fingerprint VARCHAR NOT NULL,
    hex_chars INTEGER NOT NULL,
    set_at TIMESTAMP NOT NULL
)
