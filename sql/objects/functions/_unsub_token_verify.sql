CREATE OR REPLACE FUNCTION broadcast._unsub_token_verify(token text, secret bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE
    AS 'MODULE_PATHNAME', 'be_unsub_token_verify';
