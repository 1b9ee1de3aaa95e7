/*
 * In SECURITY DEFINER functions current_user is the owner, so access is
 * checked for the calling role (after SET ROLE), not the login role: a
 * front that logs in as a member of every tenant and switches per request
 * gets the rights of the tenant it switched to, never more.
 */

CREATE OR REPLACE FUNCTION broadcast._authorize_caller(p_workspace_id text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._check_id('workspace', p_workspace_id);
	IF NOT broadcast._role_has_workspace_access(broadcast._caller(), p_workspace_id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for workspace %s', quote_literal(p_workspace_id)),
			HINT = 'An administrator can grant access with broadcast.grant_workspace().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
	END IF;
END
$$;
