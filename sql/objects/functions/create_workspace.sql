/* _check_workspace_settings (40_events_input.sql) also checks unsubscribe_page */

CREATE OR REPLACE FUNCTION broadcast.create_workspace(workspace_id text, name text, timezone text DEFAULT 'UTC'::text, settings jsonb DEFAULT '{}'::jsonb) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._require_admin('create a workspace');
	PERFORM broadcast._check_id('workspace', create_workspace.workspace_id);
	IF create_workspace.name IS NULL OR btrim(create_workspace.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace name must not be empty';
	END IF;
	PERFORM broadcast._check_timezone(create_workspace.timezone);
	PERFORM broadcast._check_workspace_settings(settings);
	IF EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = create_workspace.workspace_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('workspace %s already exists', quote_literal(create_workspace.workspace_id));
	END IF;

	INSERT INTO broadcast.workspaces (workspace_id, name, timezone, settings)
	VALUES (create_workspace.workspace_id, create_workspace.name, create_workspace.timezone, settings);
	/* 244 random bits from the server's strong random source */
	INSERT INTO broadcast.workspace_secrets (workspace_id, unsubscribe_secret)
	VALUES (create_workspace.workspace_id,
			uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
	RETURN create_workspace.workspace_id;
END
$$;
