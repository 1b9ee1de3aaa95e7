/* ------------------------------------------------------------------------
 * Access control
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast.is_admin() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$ SELECT pg_catalog.pg_has_role('broadcast_admin', 'MEMBER') $$;
