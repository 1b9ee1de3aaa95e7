CREATE OR REPLACE FUNCTION broadcast._require_list(p_workspace_id text, p_list_id text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.lists l
					WHERE l.workspace_id = p_workspace_id AND l.list_id = p_list_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('list %s does not exist in workspace %s',
							 coalesce(quote_literal(p_list_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
END
$$;
