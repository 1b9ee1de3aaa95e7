/* C helpers (src/events_sql.c) */

CREATE OR REPLACE FUNCTION broadcast._hmac_sha256(key bytea, data bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_hmac_sha256';
