/* ---- SendGrid signed event webhooks ------------------------------------ */
CREATE OR REPLACE FUNCTION broadcast._ecdsa_verify(public_key text, data bytea, signature bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_ecdsa_verify';

REVOKE ALL ON FUNCTION broadcast._ecdsa_verify(text, bytea, bytea) FROM PUBLIC;
