CREATE OR REPLACE FUNCTION broadcast._unsub_token_verify(token text, secret bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE
    AS '$libdir/broadcast_engine', 'be_unsub_token_verify';
