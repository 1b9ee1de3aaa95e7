/*
 * A preview of any template source with any data, for editors and tests:
 * the same compiler, limits and errors as saving a template and sending
 * it.  It reads no table, so anyone may call it.  Dates render in the
 * data's contact.timezone, else workspace.timezone, else UTC.
 */

CREATE OR REPLACE FUNCTION broadcast.render_liquid(template text, data jsonb DEFAULT '{}'::jsonb) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	depth integer;
BEGIN
	IF template IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'template must not be NULL';
	END IF;
	/* the bound of create_template, so that whatever previews can be saved */
	IF pg_catalog.octet_length(template) > 524288 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('template is too large: %s bytes, at most 524288',
							 pg_catalog.octet_length(template));
	END IF;
	IF data IS NOT NULL THEN
		IF pg_catalog.jsonb_typeof(data) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('template data must be a JSON object, not %s', pg_catalog.jsonb_typeof(data)),
				HINT = 'Pass the variables as keys of an object, e.g. {"contact": {"first_name": "Ann"}}.';
		END IF;
		IF pg_catalog.pg_column_size(data) > 1048576 THEN
			RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
				MESSAGE = format('template data is too large: %s bytes, at most 1048576',
								 pg_catalog.pg_column_size(data));
		END IF;
		depth := broadcast._jsonb_depth(data);
		IF depth > 30 THEN
			RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
				MESSAGE = format('template data is nested %s levels deep; at most 30 are allowed', depth);
		END IF;
	END IF;
	RETURN broadcast._template_render(template, data);
END
$$;

COMMENT ON FUNCTION broadcast.render_liquid(template text, data jsonb) IS
	'Renders a Liquid template with any JSON data (previews); errors and limits as for saving and sending a template';
