CREATE OR REPLACE FUNCTION broadcast._instance_nonce() RETURNS uuid
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$ SELECT i.nonce FROM broadcast.instance i $$;
