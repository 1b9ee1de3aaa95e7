/* ------------------------------------------------------------------------
 * Segments: create, update, drop, list
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION broadcast._check_segment_name(p_name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_name IS NULL OR btrim(p_name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'segment name must not be empty';
	END IF;
	IF length(p_name) > 200 THEN
		RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
			MESSAGE = 'segment name must be at most 200 characters';
	END IF;
END
$$;
