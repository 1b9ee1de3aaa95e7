/* Resend tags come as an object, or as [{"name": ..., "value": ...}] */

CREATE OR REPLACE FUNCTION broadcast._tag_value(tags jsonb, name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT CASE jsonb_typeof(tags)
		WHEN 'object' THEN tags->>name
		WHEN 'array' THEN (SELECT t->>'value' FROM jsonb_array_elements(tags) t
							WHERE t->>'name' = name LIMIT 1)
	END
$$;
