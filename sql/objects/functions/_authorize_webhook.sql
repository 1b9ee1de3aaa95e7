/* a web front (broadcast_webhook) may post for any workspace; others need a grant */

CREATE OR REPLACE FUNCTION broadcast._authorize_webhook(p_workspace_id text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF pg_has_role(broadcast._caller(), 'broadcast_webhook', 'MEMBER') THEN
		PERFORM broadcast._check_id('workspace', p_workspace_id);
		IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
		END IF;
	ELSE
		PERFORM broadcast._authorize_caller(p_workspace_id);
	END IF;
END
$$;
