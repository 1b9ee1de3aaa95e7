/* purpose: 'unsubscribe', 'confirm' or 'track'; each signs under its own MAC context */
CREATE OR REPLACE FUNCTION broadcast._signed_token_make(purpose text, secret bytea, workspace_id text,
											 list_id text, email text, message_id text)
RETURNS text
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_signed_token_make';
