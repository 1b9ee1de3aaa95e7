CREATE OR REPLACE FUNCTION broadcast.create_list(workspace_id text, list_id text, name text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._authorize(create_list.workspace_id);
	PERFORM broadcast._check_id('list', create_list.list_id);
	IF create_list.name IS NULL OR btrim(create_list.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'list name must not be empty';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.lists l
				WHERE l.workspace_id = create_list.workspace_id AND l.list_id = create_list.list_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('list %s already exists in workspace %s',
							 quote_literal(create_list.list_id), quote_literal(create_list.workspace_id));
	END IF;
	INSERT INTO broadcast.lists (workspace_id, list_id, name)
	VALUES (create_list.workspace_id, create_list.list_id, create_list.name);
	RETURN create_list.list_id;
END
$$;
