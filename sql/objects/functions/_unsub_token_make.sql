CREATE OR REPLACE FUNCTION broadcast._unsub_token_make(secret bytea, workspace_id text, list_id text, email text, message_id text) RETURNS text
    LANGUAGE c IMMUTABLE
    AS 'MODULE_PATHNAME', 'be_unsub_token_make';
