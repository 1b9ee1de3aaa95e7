CREATE OR REPLACE FUNCTION broadcast.has_workspace_access(workspace_id text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT broadcast.is_admin()
		OR workspace_id IN (SELECT broadcast.my_workspaces())
$$;
