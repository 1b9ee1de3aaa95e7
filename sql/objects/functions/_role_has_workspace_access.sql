/* may role use the workspace: an administrator, or a member of a granted role */

CREATE OR REPLACE FUNCTION broadcast._role_has_workspace_access(p_role oid, p_workspace_id text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT pg_catalog.pg_has_role(p_role, 'broadcast_admin', 'MEMBER')
		OR EXISTS (SELECT 1 FROM broadcast.workspace_grants g
					 JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name
					WHERE g.workspace_id = p_workspace_id
					  AND pg_catalog.pg_has_role(p_role, r.oid, 'MEMBER'))
$$;
