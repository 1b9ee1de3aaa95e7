/* identifiers users choose: workspace, list, template, integration, broadcast */

CREATE OR REPLACE FUNCTION broadcast.is_valid_id(id text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $_$ SELECT id OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' $_$;
