-- Tenant checks behind a SET ROLE front (PostgREST's authenticator), SET
-- SESSION AUTHORIZATION and transaction poolers: the API authorises the role
-- the call is made as, never the login role it switched from.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

CREATE SCHEMA caller_t;
GRANT USAGE ON SCHEMA caller_t TO PUBLIC;
CREATE FUNCTION caller_t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || msg;
END
$$;

/*
 * Calls every API function that takes a workspace_id (read from pg_proc, so
 * functions added later are covered too) for workspace ws, each in a
 * subtransaction that is rolled back, and says per function whether the call
 * was refused with 42501 ("denied") or got past the workspace check (its
 * SQLSTATE, or "allowed").  Arguments other than the workspace get values of
 * their type that are valid enough to reach the check.
 */
CREATE FUNCTION caller_t.try_all(ws text)
RETURNS TABLE (fn text, admin_only boolean, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
	p record;
	args text[];
	i int;
	v text;
	st text;
	msg text;
BEGIN
	FOR p IN
		SELECT f.oid, f.proname, f.proargnames, f.proargmodes, f.proallargtypes, f.proargtypes,
			   f.pronargs, f.prosrc
		  FROM pg_proc f
		 WHERE f.pronamespace = 'broadcast'::regnamespace
		   AND f.proname !~ '^_' AND f.proname <> 'has_workspace_access'
		   AND EXISTS (SELECT 1 FROM unnest(f.proargnames[1:f.pronargs]) a WHERE a = 'workspace_id')
		 ORDER BY f.oid::regprocedure::text
	LOOP
		args := '{}';
		FOR i IN 1 .. p.pronargs LOOP
			v := CASE
				WHEN p.proargnames[i] = 'workspace_id' THEN quote_literal(ws)
				WHEN p.proargnames[i] = 'email' THEN '''someone@example.com'''
				WHEN p.proargnames[i] = 'contacts' THEN '''[{"email": "someone@example.com"}]''::jsonb'
				WHEN p.proargnames[i] = 'provider' THEN '''smtp'''
				ELSE CASE p.proargtypes[i - 1]
					WHEN 'text'::regtype THEN '''x'''
					WHEN 'text[]'::regtype THEN '''{x}''::text[]'
					WHEN 'jsonb'::regtype THEN '''{}''::jsonb'
					WHEN 'integer'::regtype THEN '50'
					WHEN 'numeric'::regtype THEN '1::numeric'
					WHEN 'boolean'::regtype THEN 'false'
					WHEN 'interval'::regtype THEN '''1 day''::interval'
					WHEN 'timestamptz'::regtype THEN '''2999-01-01 00:00:00+00''::timestamptz'
					WHEN 'timestamp'::regtype THEN '''2999-01-01 00:00:00''::timestamp'
					WHEN 'uuid'::regtype THEN 'gen_random_uuid()'
					WHEN 'regrole'::regtype THEN 'current_user::regrole'
					ELSE format('NULL::%s', p.proargtypes[i - 1]::regtype) END
				END;
			args := args || format('%I => %s', p.proargnames[i], v);
		END LOOP;
		fn := p.oid::regprocedure::text;
		admin_only := p.prosrc ~ '_require_admin';
		BEGIN
			EXECUTE format('SELECT %s(%s)', p.oid::regproc, array_to_string(args, ', '));
			outcome := 'allowed';
			RAISE EXCEPTION USING ERRCODE = 'ZZ001';	-- undo what the call did
		EXCEPTION
			WHEN SQLSTATE 'ZZ001' THEN NULL;
			WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				outcome := CASE WHEN st = '42501' THEN 'denied' ELSE st || ': ' || msg END;
		END;
		RETURN NEXT;
	END LOOP;
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA caller_t TO PUBLIC;

-- authenticator logs in and switches; it is a member of both tenants and has
-- no grant of its own
CREATE ROLE caller_tenant_a NOLOGIN;
CREATE ROLE caller_tenant_b NOLOGIN;
CREATE ROLE caller_nogrant NOLOGIN IN ROLE broadcast_user;
CREATE ROLE caller_bare NOLOGIN;
CREATE ROLE caller_authenticator LOGIN NOINHERIT
	IN ROLE caller_tenant_a, caller_tenant_b, caller_nogrant, caller_bare;

SELECT broadcast.create_workspace('acme', 'Acme', settings => '{"default_from_email": "a@acme.test"}'),
	   broadcast.create_workspace('beta', 'Beta', settings => '{"default_from_email": "b@beta.test"}');
SELECT broadcast.grant_workspace('acme', 'caller_tenant_a'), broadcast.grant_workspace('beta', 'caller_tenant_b');
SELECT broadcast.upsert_contacts('acme', '[{"email": "a1@example.com"}]'),
	   broadcast.upsert_contacts('beta', '[{"email": "b1@example.com"}]');
SELECT broadcast.create_list('acme', 'news', 'News'), broadcast.create_list('beta', 'news', 'News');
SELECT broadcast.create_template('acme', 't', 'A subject', '<p>A</p>'),
	   broadcast.create_template('beta', 't', 'B subject', '<p>B</p>');
SELECT broadcast.create_integration('acme', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 2525}'),
	   broadcast.create_integration('beta', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 2525}');
SELECT broadcast.create_broadcast('acme', 'b', 'A', ARRAY['news'], 'smtp', 't'),
	   broadcast.create_broadcast('beta', 'b', 'B', ARRAY['news'], 'smtp', 't');

-- the front logs in as the authenticator and becomes tenant_b for a request
SET SESSION AUTHORIZATION caller_authenticator;
SET ROLE caller_tenant_b;
SELECT session_user, current_user, broadcast._caller()::regrole AS caller;
-- the calls of the report: both succeeded before 1.3
SELECT caller_t.err($$ SELECT broadcast.create_integration('acme', 'evil', 'smtp', '{"host": "127.0.0.1", "port": 25}') $$);
SELECT caller_t.err($$ SELECT broadcast.unsubscribe_url('acme', 'a1@example.com', 'news') $$);
SELECT caller_t.err($$ SELECT broadcast.cancel_broadcast('acme', 'b') $$);
SELECT caller_t.err($$ SELECT broadcast.upsert_contacts('acme', '[{"email": "evil@example.com"}]') $$);
SELECT caller_t.err($$ SELECT * FROM broadcast.record_events('acme', 'smtp', '[]') $$);
SELECT caller_t.err($$ SELECT * FROM broadcast.broadcast_stats('acme', 'b') $$);
SELECT broadcast.has_workspace_access('acme') AS b_reaches_acme, broadcast.has_workspace_access('beta') AS b_reaches_beta;
-- every API function taking a workspace_id, for the other tenant's workspace
SELECT count(*) >= 25 AS enough_functions,
	   string_agg(fn || ' ' || outcome, E'\n') FILTER (WHERE outcome <> 'denied') AS not_denied
  FROM caller_t.try_all('acme');
-- and in its own workspace every one but the administrators' gets past the check
SELECT string_agg(fn, ', ') FILTER (WHERE outcome = 'denied' AND NOT admin_only) AS denied_in_own,
	   string_agg(fn || ' ' || outcome, ', ') FILTER (WHERE outcome <> 'denied' AND admin_only) AS admin_allowed
  FROM caller_t.try_all('beta');
SELECT broadcast.schedule_broadcast('beta', 'b', '2999-01-01 00:00:00+00') IS NOT NULL AS b_schedules_its_own;
RESET ROLE;

-- the other direction: tenant_a cannot reach beta
SET ROLE caller_tenant_a;
SELECT caller_t.err($$ SELECT broadcast.create_integration('beta', 'evil', 'smtp', '{"host": "127.0.0.1", "port": 25}') $$);
SELECT caller_t.err($$ SELECT broadcast.unsubscribe_url('beta', 'b1@example.com', 'news') $$);
SELECT count(*) >= 25 AS enough_functions,
	   string_agg(fn || ' ' || outcome, E'\n') FILTER (WHERE outcome <> 'denied') AS not_denied
  FROM caller_t.try_all('beta');
SELECT string_agg(fn, ', ') FILTER (WHERE outcome = 'denied' AND NOT admin_only) AS denied_in_own
  FROM caller_t.try_all('acme');
RESET ROLE;

-- a role with no workspace grant reaches neither workspace
SET ROLE caller_nogrant;
SELECT string_agg(fn || ' ' || outcome, E'\n') FILTER (WHERE outcome <> 'denied') AS not_denied_acme
  FROM caller_t.try_all('acme');
SELECT string_agg(fn || ' ' || outcome, E'\n') FILTER (WHERE outcome <> 'denied') AS not_denied_beta
  FROM caller_t.try_all('beta');
SELECT caller_t.err($$ SELECT broadcast.create_template('acme', 't', 'Hijacked', '<p/>') $$);
RESET ROLE;
-- nor does a role outside broadcast_user
SET ROLE caller_bare;
SELECT caller_t.err($$ SELECT broadcast.create_integration('acme', 'evil', 'smtp', '{"host": "127.0.0.1", "port": 25}') $$);
RESET ROLE;

-- the authenticator as itself (NOINHERIT, as PostgREST advises) inherits
-- nothing, not even the schema
SELECT caller_t.err($$ SELECT broadcast.create_template('acme', 't', 'Hijacked', '<p/>') $$);

-- transaction pooling: SET LOCAL ROLE and set_config('role', ..., true), as
-- PostgREST does, last for one transaction
BEGIN;
SET LOCAL ROLE caller_tenant_b;
SELECT caller_t.err($$ SELECT broadcast.create_template('acme', 't', 'Hijacked', '<p/>') $$);
SELECT caller_t.err($$ SELECT broadcast.create_template('beta', 't2', 'B2', '<p/>') $$);
COMMIT;
BEGIN;
SELECT set_config('role', 'caller_tenant_a', true) AS role;
SELECT caller_t.err($$ SELECT broadcast.create_template('beta', 't', 'Hijacked', '<p/>') $$);
SELECT caller_t.err($$ SELECT broadcast.create_template('acme', 't2', 'A2', '<p/>') $$);
COMMIT;
SELECT current_user AS after_commit;
RESET SESSION AUTHORIZATION;

-- SET SESSION AUTHORIZATION by a superuser: the session is tenant_b's
SET SESSION AUTHORIZATION caller_tenant_b;
SELECT session_user, broadcast._caller()::regrole AS caller;
SELECT caller_t.err($$ SELECT broadcast.create_integration('acme', 'evil', 'smtp', '{"host": "127.0.0.1", "port": 25}') $$);
SELECT count(*) >= 25 AS enough_functions,
	   string_agg(fn || ' ' || outcome, E'\n') FILTER (WHERE outcome <> 'denied') AS not_denied
  FROM caller_t.try_all('acme');
SELECT caller_t.err($$ SELECT broadcast.create_template('beta', 't3', 'B3', '<p/>') $$);
RESET SESSION AUTHORIZATION;

-- an administrator that switches to a tenant keeps only the tenant's rights
CREATE ROLE caller_ops LOGIN IN ROLE broadcast_admin, caller_tenant_b;
SET SESSION AUTHORIZATION caller_ops;
SET ROLE caller_tenant_b;
SELECT caller_t.err($$ SELECT broadcast.create_workspace('evil', 'Evil') $$);
SELECT caller_t.err($$ SELECT broadcast.create_template('acme', 't', 'Hijacked', '<p/>') $$);
RESET ROLE;
SELECT caller_t.err($$ SELECT broadcast.create_template('acme', 't4', 'By ops', '<p/>') $$);
RESET SESSION AUTHORIZATION;

-- acme holds only what tenant_a and the administrator made
SELECT integration_id FROM broadcast.integrations WHERE workspace_id = 'acme' ORDER BY 1;
SELECT template_id, version, subject FROM broadcast.templates WHERE workspace_id = 'acme' ORDER BY 1, 2;
SELECT email FROM broadcast.contacts WHERE workspace_id = 'acme' ORDER BY 1;
SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'acme';

SELECT broadcast.drop_workspace('acme'), broadcast.drop_workspace('beta');
DROP SCHEMA caller_t CASCADE;
DROP ROLE caller_authenticator, caller_ops, caller_tenant_a, caller_tenant_b, caller_nogrant, caller_bare;
