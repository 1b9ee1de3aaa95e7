CREATE OR REPLACE FUNCTION broadcast._signed_token_verify(purpose text, token text, secret bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_signed_token_verify';
