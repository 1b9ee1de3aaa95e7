/* shows a user value in a message: quoted, with control characters visible */

CREATE OR REPLACE FUNCTION broadcast._show(v text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT CASE WHEN v IS NULL THEN 'NULL'
				WHEN v ~ '[\x01-\x1f\x7f]' THEN to_jsonb(v)::text
				ELSE quote_literal(v) END
$$;
