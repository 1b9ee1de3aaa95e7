/*
 * Invoker-rights API functions: row level security already applies as
 * current_user; the calling role must have access too, so that a function
 * owned by someone else cannot lend its owner's workspaces to its caller.
 * Both are the same role unless the call comes through such a function.
 */

CREATE OR REPLACE FUNCTION broadcast._authorize(p_workspace_id text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._check_id('workspace', p_workspace_id);
	IF NOT (broadcast.has_workspace_access(p_workspace_id)
			AND broadcast._role_has_workspace_access(broadcast._caller(), p_workspace_id)) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for workspace %s', quote_literal(p_workspace_id)),
			HINT = 'An administrator can grant access with broadcast.grant_workspace().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
	END IF;
END
$$;
