/* ------------------------------------------------------------------------
 * Parsing helpers
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast._uuid_or_null(v text) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
	SELECT CASE WHEN v ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
				THEN v::uuid END
$_$;
