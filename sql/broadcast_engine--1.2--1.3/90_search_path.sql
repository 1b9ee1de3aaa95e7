/*
 * 90_search_path: no engine function depends on the caller's search_path
 * (issue 11, section 5).  Keep this file LAST: it rewrites the row level
 * security policies of every table, including those the files before it add.
 *
 * A function without a pinned search_path resolves operators, functions and
 * types in its body through the caller's search_path.  A tenant that can
 * create objects in a schema of its own could define "=" or "~" for text,
 * put that schema first, and make the row level security helpers (and the
 * CHECK constraints' validators) answer what it likes: read, change and
 * delete another workspace's rows, or store invalid addresses.
 *
 * Every SQL and PL/pgSQL function of the schema gets
 * SET search_path = pg_catalog, pg_temp, except the few below that must stay
 * inlinable (a pinned SQL function is never inlined): the CHECK validators,
 * run for every row written, and broadcast_stats, whose plan must reach the
 * history indexes.  Their bodies name every operator,
 * function, type and table with its schema (OPERATOR(pg_catalog.=),
 * pg_catalog.length, pg_catalog.numeric), and use no construct that looks an
 * operator up by name (IN, NULLIF, simple CASE), so parsing them under any
 * search_path gives the same expression.  The "search_path" regression test
 * lists unpinned functions and attacks these.
 */

/*
 * The row level security policies.  has_workspace_access(workspace_id) is an
 * SQL function with a subquery, which PostgreSQL never inlines: as a policy
 * it ran once per row, each time querying the grants.  Pinned it would cost
 * more still.  The policies now state the condition themselves: the two
 * subqueries do not depend on the row, so each runs once per statement, and
 * their operators were resolved when the policy was created, so no caller's
 * search_path reaches them.  Every policy that still reads
 * has_workspace_access(workspace_id), including those of tables added by the
 * files before this one, is rewritten.
 */
DO $policies$
DECLARE
	pol record;
BEGIN
	FOR pol IN
		SELECT p.polname, p.polrelid::regclass AS tab
		  FROM pg_catalog.pg_policy p
		  JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
		 WHERE c.relnamespace = 'broadcast'::regnamespace
		   /* the schema is left out when it is on the script's search_path */
		   AND pg_catalog.pg_get_expr(p.polqual, p.polrelid)
			   IN ('broadcast.has_workspace_access(workspace_id)', 'has_workspace_access(workspace_id)')
		   AND p.polwithcheck IS NULL
		 ORDER BY 2, 1
	LOOP
		EXECUTE pg_catalog.format('ALTER POLICY %I ON %s USING ((SELECT broadcast.is_admin())
								   OR workspace_id OPERATOR(pg_catalog.=) ANY (SELECT broadcast.my_workspaces()))',
								  pol.polname, pol.tab);
	END LOOP;
END
$policies$;
ALTER POLICY own_grants ON broadcast.workspace_grants
	USING ((SELECT broadcast.is_admin())
		   OR role_name OPERATOR(pg_catalog.=) ANY (SELECT r.rolname FROM pg_catalog.pg_roles r
												   WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER')));
