/* reads a token without checking its signature (to find the workspace's secret) */

CREATE OR REPLACE FUNCTION broadcast._unsub_token_parse(token text, OUT workspace_id text, OUT list_id text, OUT email text, OUT message_id text) RETURNS record
    LANGUAGE c IMMUTABLE STRICT
    AS 'MODULE_PATHNAME', 'be_unsub_token_parse';
