/*
 * Whether role p_role holds a grant on the workspace, directly or through a
 * group.  A grant names a role that may not exist here (a restore before
 * the roles were created): the join on pg_roles skips it, where
 * pg_has_role(name) would raise an error.
 */

CREATE OR REPLACE FUNCTION broadcast._has_grant(p_role name, p_workspace_id text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT EXISTS (SELECT 1 FROM broadcast.workspace_grants g
					 JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) g.role_name
					WHERE g.workspace_id OPERATOR(pg_catalog.=) p_workspace_id
					  AND pg_catalog.pg_has_role(p_role, r.oid, 'MEMBER'))
$$;
