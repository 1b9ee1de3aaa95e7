-- No engine function depends on the caller's search_path: a tenant with a
-- schema of its own defines operators for text that always say "true", puts
-- that schema first, and still cannot reach another workspace or store rows
-- the CHECK constraints refuse.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

-- every SQL and PL/pgSQL function of the schema pins search_path, except the
-- inlined ones, whose bodies name every operator and function with its schema
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'broadcast'::regnamespace
   AND l.lanname NOT IN ('c', 'internal')
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
   AND p.oid NOT IN ('broadcast.is_valid_email(text)'::regprocedure,
					 'broadcast.is_valid_id(text)'::regprocedure,
					 'broadcast.broadcast_stats(text, text)'::regprocedure)
 ORDER BY 1;
-- the exceptions are SQL functions without any setting, so they stay inlinable
SELECT p.oid::regprocedure AS inlined, l.lanname, p.proconfig
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'broadcast'::regnamespace
   AND l.lanname NOT IN ('c', 'internal')
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
 ORDER BY 1;

CREATE SCHEMA sp_t;
GRANT USAGE ON SCHEMA sp_t TO PUBLIC;
CREATE FUNCTION sp_t.err(stmt text) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
DECLARE st text; msg text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || msg;
END
$$;
GRANT EXECUTE ON FUNCTION sp_t.err(text) TO PUBLIC;

CREATE ROLE sp_tenant_a NOLOGIN;
CREATE ROLE sp_tenant_b NOLOGIN;
CREATE SCHEMA sp_evil AUTHORIZATION sp_tenant_b;
SELECT broadcast.create_workspace('spa', 'A', settings => '{"default_from_email": "a@spa.test"}'),
	   broadcast.create_workspace('spb', 'B', settings => '{"default_from_email": "b@spb.test"}');
SELECT broadcast.grant_workspace('spa', 'sp_tenant_a'), broadcast.grant_workspace('spb', 'sp_tenant_b');
SELECT broadcast.upsert_contacts('spa', '[{"email": "a1@example.com", "first_name": "Ann"}]'),
	   broadcast.upsert_contacts('spb', '[{"email": "b1@example.com"}]');
SELECT broadcast.create_list('spa', 'news', 'News'), broadcast.create_list('spb', 'news', 'News');
SELECT broadcast.subscribe('spa', 'news', ARRAY['a1@example.com']);
SELECT broadcast.create_template('spa', 't', 'A subject', '<p>A</p>');
SELECT broadcast.create_integration('spa', 'sg', 'sendgrid', '{}', 'SECRET-A');
SELECT broadcast.create_broadcast('spa', 'b', 'A', ARRAY['news'], 'sg', 't');
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, status)
VALUES ('spa', gen_random_uuid(), 'b', 'a1@example.com', 'sent');

-- row level security asks for the role's workspaces once per statement (a
-- hashed subplan), not once per row
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; plan text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP plan := plan || r || E'\n'; END LOOP;
	RETURN plan;
END
$$;
SET ROLE sp_tenant_b;
SELECT p ~ 'hashed SubPlan' AS hashed, p !~ 'has_workspace_access' AS no_call_per_row
  FROM pg_temp.plan_of('SELECT * FROM broadcast.contacts') p;

-- tenant B's operators for text ("=", "~", "!~") and integers ("<="): all
-- always true
CREATE FUNCTION sp_evil.yes(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE FUNCTION sp_evil.yes(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR sp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.yes);
CREATE OPERATOR sp_evil.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.yes);
CREATE OPERATOR sp_evil.!~ (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.yes);
CREATE OPERATOR sp_evil.<= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = sp_evil.yes);
SET search_path = sp_evil, pg_catalog;
SELECT 'x'::text = 'y'::text AS evil_equals_is_active;

-- another workspace's rows stay out of reach
SELECT count(*) AS a_contacts FROM broadcast.contacts WHERE workspace_id OPERATOR(pg_catalog.=) 'spa';
SELECT count(*) AS a_history FROM broadcast.message_history WHERE workspace_id OPERATOR(pg_catalog.=) 'spa';
SELECT count(*) AS a_members FROM broadcast.list_members WHERE workspace_id OPERATOR(pg_catalog.=) 'spa';
SELECT count(*) AS a_workspaces FROM broadcast.workspaces WHERE workspace_id OPERATOR(pg_catalog.=) 'spa';
SELECT count(*) AS visible_grants FROM broadcast.workspace_grants;
-- (since 1.3 a tenant writes only through the API: direct writes are refused outright)
SELECT sp_t.err($$ UPDATE broadcast.contacts SET first_name = 'Pwned' WHERE workspace_id OPERATOR(pg_catalog.=) 'spa' $$);
SELECT sp_t.err($$ DELETE FROM broadcast.list_members WHERE workspace_id OPERATOR(pg_catalog.=) 'spa' $$);
SELECT sp_t.err($$ DELETE FROM broadcast.contacts WHERE workspace_id OPERATOR(pg_catalog.=) 'spa' $$);
SELECT sp_t.err($$ SELECT broadcast.delete_contacts('spa', ARRAY['a1@example.com']) $$);
SELECT sp_t.err($$ SELECT broadcast.suppress('spa', ARRAY['a1@example.com']) $$);
SELECT sp_t.err($$ INSERT INTO broadcast.contacts (workspace_id, email) VALUES ('spa', 'evil@example.com') $$);
SELECT sp_t.err($$ UPDATE broadcast.contacts SET workspace_id = 'spa' $$);
-- and so do its API calls
SELECT sp_t.err($$ SELECT broadcast.upsert_contacts('spa', '[{"email": "evil@example.com"}]') $$);
SELECT sp_t.err($$ SELECT broadcast.create_list('spa', 'evil', 'Evil') $$);
SELECT sp_t.err($$ SELECT broadcast.subscribe('spa', 'news', ARRAY['evil@example.com']) $$);
SELECT sp_t.err($$ SELECT broadcast.render_template('spa', 't', 1, 'a1@example.com') $$);
SELECT sp_t.err($$ SELECT * FROM broadcast.broadcast_stats('spa', 'b') $$);
SELECT sp_t.err($$ SELECT broadcast.create_integration('spa', 'evil', 'sendgrid', '{}', 'x') $$);
SELECT sp_t.err($$ SELECT broadcast.cancel_broadcast('spa', 'b') $$);
-- the CHECK constraints still refuse bad values in its own workspace
SELECT sp_t.err($$ INSERT INTO broadcast.contacts (workspace_id, email) VALUES ('spb', 'not an address') $$);
SELECT sp_t.err($$ INSERT INTO broadcast.contacts (workspace_id, email) VALUES ('spb', E'x@example.com\nbcc: y@example.com') $$);
SELECT sp_t.err($$ INSERT INTO broadcast.lists (workspace_id, list_id, name) VALUES ('spb', 'bad id!', 'Bad') $$);
SELECT sp_t.err($$ SELECT broadcast.upsert_contacts('spb', '[{"email": "not an address"}]') $$);
SELECT sp_t.err($$ SELECT broadcast.upsert_contacts('spb', E'[{"email": "x@example.com\\nbcc: y@example.com"}]') $$);
SELECT sp_t.err($$ SELECT broadcast.create_list('spb', 'bad id!', 'Bad') $$);
-- while its own workspace works as before
SELECT broadcast.upsert_contacts('spb', '[{"email": "b2@example.com"}]');
SELECT count(*) AS b_contacts FROM broadcast.contacts;
RESET search_path;
RESET ROLE;

-- workspace A is untouched
SELECT email, first_name FROM broadcast.contacts WHERE workspace_id = 'spa' ORDER BY 1;
SELECT list_id, email FROM broadcast.list_members WHERE workspace_id = 'spa' ORDER BY 1, 2;
SELECT list_id FROM broadcast.lists WHERE workspace_id = 'spa' ORDER BY 1;
SELECT integration_id FROM broadcast.integrations WHERE workspace_id = 'spa' ORDER BY 1;
SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'spa';
SELECT email FROM broadcast.contacts WHERE workspace_id = 'spb' ORDER BY 1;

SELECT broadcast.drop_workspace('spa'), broadcast.drop_workspace('spb');
DROP SCHEMA sp_evil CASCADE;
DROP SCHEMA sp_t CASCADE;
DROP ROLE sp_tenant_a, sp_tenant_b;
