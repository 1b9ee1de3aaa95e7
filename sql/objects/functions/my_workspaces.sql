/* workspaces the current role was granted (directly or through a group) */

CREATE OR REPLACE FUNCTION broadcast.my_workspaces() RETURNS SETOF text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT g.workspace_id
	  FROM broadcast.workspace_grants g
	  JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) g.role_name
	 WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER')
$$;
