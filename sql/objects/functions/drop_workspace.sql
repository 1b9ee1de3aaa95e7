/* deletes a workspace and everything in it, history included */

CREATE OR REPLACE FUNCTION broadcast.drop_workspace(workspace_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._require_admin('drop a workspace');
	PERFORM broadcast._authorize(drop_workspace.workspace_id);
	/* the queue and history have no foreign keys (they are the hot tables) */
	DELETE FROM broadcast.email_queue q WHERE q.workspace_id = drop_workspace.workspace_id;
	DELETE FROM broadcast.message_history h WHERE h.workspace_id = drop_workspace.workspace_id;
	/* broadcasts first: their pinned versions reference the templates */
	DELETE FROM broadcast.broadcasts b WHERE b.workspace_id = drop_workspace.workspace_id;
	DELETE FROM broadcast.workspaces w WHERE w.workspace_id = drop_workspace.workspace_id;
END
$$;
