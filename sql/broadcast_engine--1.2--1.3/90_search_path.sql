/*
 * 90_search_path: no engine function depends on the caller's search_path
 * (issue 11, section 5).  Keep this file LAST: it pins every function of the
 * schema, including those the files before it add.
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

CREATE OR REPLACE FUNCTION broadcast.is_valid_email(email text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
	SELECT pg_catalog.length(email) OPERATOR(pg_catalog.<=) 254
	   AND email OPERATOR(pg_catalog.~) '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
	   AND email OPERATOR(pg_catalog.!~) '(^\.|\.\.|\.@)'
$$;

CREATE OR REPLACE FUNCTION broadcast.is_valid_id(id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT id OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' $$;

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

/*
 * broadcast_stats: as in 1.2, with qualified names, and refused (42501) for
 * a workspace the caller may not use rather than answering zeros.  The check
 * is a condition without columns, so the inlined plan tests it once before
 * reading history.
 */
CREATE OR REPLACE FUNCTION broadcast.broadcast_stats(workspace_id text, broadcast_id text)
RETURNS TABLE (
	template_id text,
	sent bigint,
	failed bigint,
	delivered bigint,
	opened bigint,
	clicked bigint,
	bounced bigint,
	complained bigint,
	unsubscribed bigint,
	delivery_rate numeric,
	open_rate numeric,
	click_rate numeric,
	bounce_rate numeric,
	complaint_rate numeric,
	unsubscribe_rate numeric)
LANGUAGE sql STABLE
AS $$
	SELECT s.template_id, s.sent, s.failed, s.delivered, s.opened, s.clicked, s.bounced,
		   s.complained, s.unsubscribed,
		   pg_catalog.round(s.delivered::pg_catalog.numeric OPERATOR(pg_catalog./) s.sent_or_null, 4),
		   pg_catalog.round(s.opened::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4),
		   pg_catalog.round(s.clicked::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4),
		   pg_catalog.round(s.bounced::pg_catalog.numeric OPERATOR(pg_catalog./) s.sent_or_null, 4),
		   pg_catalog.round(s.complained::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4),
		   pg_catalog.round(s.unsubscribed::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4)
	  FROM (SELECT b.*,
				   CASE WHEN b.sent OPERATOR(pg_catalog.>) 0 THEN b.sent END AS sent_or_null,
				   CASE WHEN b.base OPERATOR(pg_catalog.>) 0 THEN b.base END AS base_or_null
			  FROM (SELECT g.*,
						   /* delivered when the broadcast's provider reports deliveries at all */
						   CASE WHEN pg_catalog.max(g.delivered) OVER () OPERATOR(pg_catalog.>) 0
								THEN g.reached ELSE g.sent END AS base
					  FROM (SELECT h.template_id,
								   pg_catalog.count(*) FILTER (WHERE h.status OPERATOR(pg_catalog.=) 'sent') AS sent,
								   pg_catalog.count(*) FILTER (WHERE h.status OPERATOR(pg_catalog.=) 'failed') AS failed,
								   pg_catalog.count(h.delivered_at) AS delivered,
								   /* an open or a click proves a delivery the provider may not have reported */
								   pg_catalog.count(*) FILTER (WHERE h.delivered_at IS NOT NULL OR h.opened_at IS NOT NULL
															 OR h.clicked_at IS NOT NULL) AS reached,
								   pg_catalog.count(h.opened_at) AS opened,
								   pg_catalog.count(h.clicked_at) AS clicked,
								   pg_catalog.count(h.bounced_at) AS bounced,
								   pg_catalog.count(h.complained_at) AS complained,
								   pg_catalog.count(h.unsubscribed_at) AS unsubscribed
							  FROM broadcast.message_history h
							 WHERE h.workspace_id OPERATOR(pg_catalog.=) $1
							   AND h.broadcast_id OPERATOR(pg_catalog.=) $2
							   AND broadcast._authorized($1)
							 GROUP BY GROUPING SETS ((h.template_id), ())) g) b) s
	 ORDER BY s.template_id NULLS FIRST
$$;

/* every other SQL and PL/pgSQL function of the schema: pinned */
DO $pin$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure
		  FROM pg_catalog.pg_proc p
		  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
		 WHERE p.pronamespace = 'broadcast'::regnamespace
		   AND l.lanname NOT IN ('c', 'internal')
		   AND p.oid NOT IN ('broadcast.is_valid_email(text)'::regprocedure,
							 'broadcast.is_valid_id(text)'::regprocedure,
							 'broadcast.broadcast_stats(text, text)'::regprocedure)
		   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
		 ORDER BY 1
	LOOP
		EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
	END LOOP;
END
$pin$;
