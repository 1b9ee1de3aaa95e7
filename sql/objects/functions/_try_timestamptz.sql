/* a text that is not a time gives NULL (the condition is then false), not an error */
CREATE OR REPLACE FUNCTION broadcast._try_timestamptz(v text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF v IS NULL OR v !~ '^\d{4}-\d{2}-\d{2}' THEN
		RETURN NULL;
	END IF;
	RETURN v::timestamptz;
EXCEPTION WHEN data_exception THEN
	RETURN NULL;
END
$$;
