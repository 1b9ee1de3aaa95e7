CREATE OR REPLACE FUNCTION broadcast._latest_template_version(p_workspace_id text, p_template_id text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	v integer;
BEGIN
	SELECT max(t.version) INTO v FROM broadcast.templates t
	 WHERE t.workspace_id = p_workspace_id AND t.template_id = p_template_id;
	IF v IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('template %s does not exist in workspace %s',
							 coalesce(quote_literal(p_template_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
	RETURN v;
END
$$;
