CREATE OR REPLACE FUNCTION broadcast._check_ec_public_key(public_key text)
RETURNS void
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_check_ec_public_key';

REVOKE ALL ON FUNCTION broadcast._check_ec_public_key(text) FROM PUBLIC;
