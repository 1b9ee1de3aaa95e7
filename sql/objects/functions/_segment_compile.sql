/* validates a whole definition (on save) and returns its compiled expression */
CREATE OR REPLACE FUNCTION broadcast._segment_compile(p_workspace_id text, p_definition jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_definition IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'segment definition must not be NULL';
	END IF;
	IF octet_length(p_definition::text) > 65536 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('segment definition is too large: %s bytes, at most 65536',
							 octet_length(p_definition::text));
	END IF;
	RETURN broadcast._segment_sql(p_workspace_id, p_definition, '$', 1, true);
END
$$;

REVOKE ALL ON FUNCTION broadcast._segment_compile(text, jsonb) FROM PUBLIC;
