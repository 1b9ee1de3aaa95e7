/* a payload that may be one event object or an array of them, as a set */

CREATE OR REPLACE FUNCTION broadcast._json_elements(p jsonb) RETURNS SETOF jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT e FROM jsonb_array_elements(CASE jsonb_typeof(p) WHEN 'array' THEN p
											 ELSE jsonb_build_array(p) END) e
	 WHERE jsonb_typeof(e) = 'object'
$$;
