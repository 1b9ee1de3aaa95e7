CREATE OR REPLACE FUNCTION broadcast._segment_error(path text, message text, hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
		MESSAGE = format('invalid segment definition at %s: %s', path, message),
		HINT = coalesce(hint, 'See docs/audiences.md, "Segments", for the definition language.');
END
$$;
