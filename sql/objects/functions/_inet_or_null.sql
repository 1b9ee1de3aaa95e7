/* an address as the edge saw it, or NULL when it is none */
CREATE OR REPLACE FUNCTION broadcast._inet_or_null(v text)
RETURNS inet
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF v IS NULL OR v !~ '^[0-9A-Fa-f:.]{2,45}$' THEN
		RETURN NULL;
	END IF;
	RETURN v::inet;
EXCEPTION WHEN invalid_text_representation THEN
	RETURN NULL;
END
$$;
