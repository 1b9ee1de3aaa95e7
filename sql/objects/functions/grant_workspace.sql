/* _authorize_caller matches grants through _role_has_workspace_access (30_caller.sql) */

CREATE OR REPLACE FUNCTION broadcast.grant_workspace(workspace_id text, role regrole) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._require_admin('grant workspace access');
	PERFORM broadcast._authorize(grant_workspace.workspace_id);
	IF role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be NULL';
	END IF;
	INSERT INTO broadcast.workspace_grants (workspace_id, role_name)
	SELECT grant_workspace.workspace_id, r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = role::oid
	ON CONFLICT DO NOTHING;
	EXECUTE format('GRANT broadcast_user TO %s', role);
END
$$;
