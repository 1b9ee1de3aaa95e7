CREATE OR REPLACE FUNCTION broadcast._verp_message_id(workspace_id text, token text, secret bytea)
RETURNS uuid
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_verp_message_id';

COMMENT ON FUNCTION broadcast._verp_message_id(text, text, bytea) IS
	'The message id a VERP token names, when its signature is the workspace''s; else NULL';

REVOKE ALL ON FUNCTION broadcast._verp_message_id(text, text, bytea) FROM PUBLIC;
