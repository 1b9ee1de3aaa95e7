/* ------------------------------------------------------------------------
 * Workspace settings: double_opt_in and tracking
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION broadcast._check_base_url(name text, v text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF v IS NULL OR length(v) > 500
	   OR v !~ '^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&''()*+;=:@%/-]*)?$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s must be an http or https URL of at most 500 characters, without a query, spaces or quotes', name),
			DETAIL = format('The value was %s.', broadcast._show(v));
	END IF;
END
$$;
