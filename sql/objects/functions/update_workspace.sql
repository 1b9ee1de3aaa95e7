/*
 * Changes a workspace's settings: the keys given replace the stored ones,
 * a key given as JSON null is removed.  The result is validated as a whole
 * and returned.
 */

CREATE OR REPLACE FUNCTION broadcast.update_workspace(workspace_id text, settings jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	merged jsonb;
BEGIN
	PERFORM broadcast._require_admin('update a workspace');
	PERFORM broadcast._check_id('workspace', update_workspace.workspace_id);
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace settings must be a JSON object';
	END IF;
	SELECT w.settings INTO merged FROM broadcast.workspaces w
	 WHERE w.workspace_id = update_workspace.workspace_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(update_workspace.workspace_id));
	END IF;
	merged := jsonb_strip_nulls(merged || settings);
	PERFORM broadcast._check_workspace_settings(merged);
	UPDATE broadcast.workspaces w SET settings = merged
	 WHERE w.workspace_id = update_workspace.workspace_id;
	RETURN merged;
END
$$;

COMMENT ON FUNCTION broadcast.update_workspace(workspace_id text, settings jsonb) IS 'Merges settings into a workspace''s settings (null removes a key) and returns the result';

REVOKE ALL ON FUNCTION broadcast.update_workspace(workspace_id text, settings jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.update_workspace(workspace_id text, settings jsonb) TO broadcast_admin;
