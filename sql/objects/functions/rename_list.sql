CREATE OR REPLACE FUNCTION broadcast.rename_list(workspace_id text, list_id text, name text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._authorize(rename_list.workspace_id);
	PERFORM broadcast._require_list(rename_list.workspace_id, rename_list.list_id);
	IF rename_list.name IS NULL OR btrim(rename_list.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'list name must not be empty';
	END IF;
	IF length(rename_list.name) > 200 THEN
		RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
			MESSAGE = 'list name must be at most 200 characters';
	END IF;
	UPDATE broadcast.lists l SET name = rename_list.name
	 WHERE l.workspace_id = rename_list.workspace_id AND l.list_id = rename_list.list_id;
END
$$;
