CREATE OR REPLACE FUNCTION broadcast.revoke_workspace(workspace_id text, role regrole) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._require_admin('revoke workspace access');
	DELETE FROM broadcast.workspace_grants g
	 WHERE g.workspace_id = revoke_workspace.workspace_id
	   AND g.role_name = (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = role::oid);
END
$$;
