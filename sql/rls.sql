-- Workspace isolation with real roles: row level security, grants, hidden secrets.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

CREATE SCHEMA t;
GRANT USAGE ON SCHEMA t TO PUBLIC;
CREATE FUNCTION t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || msg;
END
$$;
GRANT EXECUTE ON FUNCTION t.err(text) TO PUBLIC;

CREATE ROLE rls_alice LOGIN;
CREATE ROLE rls_bob LOGIN;
CREATE ROLE rls_admin LOGIN IN ROLE broadcast_admin;
CREATE ROLE rls_nobody LOGIN;

-- two workspaces with the same shapes of data
SELECT broadcast.create_workspace('wa', 'Workspace A', settings => '{"default_from_email": "a@wa.test"}'),
       broadcast.create_workspace('wb', 'Workspace B', settings => '{"default_from_email": "b@wb.test"}');
SELECT broadcast.upsert_contacts('wa', '[{"email": "a1@example.com"}, {"email": "a2@example.com"}]');
SELECT broadcast.upsert_contacts('wb', '[{"email": "b1@example.com"}]');
SELECT broadcast.create_list('wa', 'news', 'News'), broadcast.create_list('wb', 'news', 'News');
SELECT broadcast.create_template('wa', 't', 'A subject', '<p>A</p>'), broadcast.create_template('wb', 't', 'B subject', '<p>B</p>');
SELECT broadcast.create_integration('wa', 'sg', 'sendgrid', '{}', 'SECRET-A'),
	   broadcast.create_integration('wb', 'sg', 'sendgrid', '{}', 'SECRET-B');
SELECT broadcast.create_broadcast('wa', 'b', 'A', ARRAY['news'], 'sg', 't'),
	   broadcast.create_broadcast('wb', 'b', 'B', ARRAY['news'], 'sg', 't');
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, status)
VALUES ('wa', gen_random_uuid(), 'b', 'a1@example.com', 'sent'),
	   ('wb', gen_random_uuid(), 'b', 'b1@example.com', 'sent');
SELECT broadcast.create_shared_integration('plat', 'sendgrid', '{}', 'PLATFORM-SECRET', 500);

SELECT broadcast.grant_workspace('wa', 'rls_alice'), broadcast.grant_workspace('wb', 'rls_bob');

-- alice sees workspace A only
SET SESSION AUTHORIZATION rls_alice;
SELECT workspace_id FROM broadcast.workspaces ORDER BY 1;
SELECT workspace_id, email FROM broadcast.contacts ORDER BY 1, 2;
SELECT workspace_id, subject FROM broadcast.templates ORDER BY 1;
SELECT workspace_id, broadcast_id FROM broadcast.broadcasts ORDER BY 1;
SELECT workspace_id, email FROM broadcast.message_history ORDER BY 1;
SELECT workspace_id, integration_id, has_secret FROM broadcast.integrations_overview ORDER BY 1;
SELECT t.err($$ SELECT * FROM broadcast.broadcast_stats('wb', 'b') $$);
-- and uses the API there, including functions that store secrets
SELECT broadcast.upsert_contacts('wa', '[{"email": "a3@example.com"}]');
SELECT broadcast.create_integration('wa', 'rs', 'resend', '{}', 'SECRET-A2');
SELECT broadcast.schedule_broadcast('wa', 'b', '2999-01-01 00:00:00+00') IS NOT NULL AS scheduled;
-- but never in workspace B
SELECT t.err($$ SELECT broadcast.upsert_contacts('wb', '[{"email": "evil@example.com"}]') $$);
SELECT t.err($$ SELECT broadcast.create_integration('wb', 'rs', 'resend', '{}', 'x') $$);
SELECT t.err($$ SELECT broadcast.cancel_broadcast('wb', 'b') $$);
SELECT t.err($$ SELECT broadcast.create_template('wb', 't', 'Hijacked', '<p/>') $$);
-- direct writes are refused (since 1.3 tenants write through the API only:
-- the table privileges would also let them LOCK TABLE and stall every workspace)
SELECT t.err($$ INSERT INTO broadcast.contacts (workspace_id, email) VALUES ('wb', 'evil@example.com') $$);
SELECT t.err($$ UPDATE broadcast.contacts SET workspace_id = 'wb' WHERE email = 'a1@example.com' $$);
SELECT t.err($$ DELETE FROM broadcast.contacts WHERE workspace_id = 'wa' $$);
SELECT t.err($$ LOCK TABLE broadcast.contacts, broadcast.list_members IN ACCESS EXCLUSIVE MODE $$);
SELECT t.err($$ SELECT 1 FROM broadcast.contacts WHERE workspace_id = 'wa' FOR UPDATE $$);
-- the API writes of the audience, in A only
SELECT broadcast.rename_list('wa', 'news', 'News A');
SELECT broadcast.suppress('wa', ARRAY['a3@example.com']);
SELECT broadcast.subscribe('wa', 'news', ARRAY['a1@example.com']);
SELECT broadcast.remove_members('wa', 'news', ARRAY['a1@example.com']);
SELECT broadcast.delete_contacts('wa', ARRAY['a3@example.com']);
SELECT t.err($$ SELECT broadcast.suppress('wa', ARRAY['a2@example.com'], 'hard_bounce') $$);
SELECT t.err($$ SELECT broadcast.rename_list('wb', 'news', 'Hijacked') $$);
SELECT t.err($$ SELECT broadcast.suppress('wb', ARRAY['b1@example.com']) $$);
SELECT t.err($$ SELECT broadcast.remove_members('wb', 'news', ARRAY['b1@example.com']) $$);
SELECT t.err($$ SELECT broadcast.delete_contacts('wb', ARRAY['b1@example.com']) $$);
-- engine state changes only through the API, even in the role's own workspace
SELECT t.err($$ UPDATE broadcast.broadcasts SET status = 'completed' WHERE workspace_id = 'wa' $$);
SELECT t.err($$ INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
				VALUES ('wa', 'b', 'x@example.com', 'sg', 'news', gen_random_uuid()) $$);
SELECT t.err($$ UPDATE broadcast.tasks SET max_attempts = 100 WHERE workspace_id = 'wa' $$);
SELECT t.err($$ INSERT INTO broadcast.templates (workspace_id, template_id, version, subject, html) VALUES ('wa', 'raw', 1, 'S', '{% if %}') $$);
SELECT t.err($$ UPDATE broadcast.integrations SET config = '{"endpoint": "http://evil.test"}' WHERE workspace_id = 'wa' $$);
SELECT t.err($$ INSERT INTO broadcast.suppressions (workspace_id, email, reason) VALUES ('wa', 'a2@example.com', 'manual') $$);
SELECT t.err($$ DELETE FROM broadcast.suppressions WHERE workspace_id = 'wa' $$);
-- secrets are out of reach, and a shared platform account cannot be borrowed
SELECT t.err($$ SELECT secret FROM broadcast.integration_secrets $$);
SELECT t.err($$ SELECT secret FROM broadcast.shared_integrations $$);
SELECT t.err($$ SELECT unsubscribe_secret FROM broadcast.workspace_secrets $$);
SELECT t.err($$ INSERT INTO broadcast.integrations (workspace_id, integration_id, provider, shared_id) VALUES ('wa', 'steal', 'sendgrid', 'plat') $$);
SELECT t.err($$ UPDATE broadcast.integrations SET shared_id = 'plat' WHERE workspace_id = 'wa' $$);
-- administration is for administrators
SELECT t.err($$ SELECT broadcast.create_workspace('wc', 'C') $$);
SELECT t.err($$ SELECT broadcast.grant_workspace('wb', 'rls_alice') $$);
SELECT t.err($$ SELECT broadcast.attach_shared_integration('wa', 'p', 'plat') $$);
RESET SESSION AUTHORIZATION;

-- B is untouched
SELECT email FROM broadcast.contacts WHERE workspace_id = 'wb';
SELECT name, status FROM broadcast.broadcasts WHERE workspace_id = 'wb';
SELECT count(*) AS b_templates FROM broadcast.templates WHERE workspace_id = 'wb';

-- bob sees B only; a role with no grant sees nothing
SET SESSION AUTHORIZATION rls_bob;
SELECT workspace_id, email FROM broadcast.contacts ORDER BY 1, 2;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION rls_nobody;
SELECT t.err($$ SELECT count(*) FROM broadcast.contacts $$);
SELECT t.err($$ SELECT broadcast.upsert_contacts('wa', '[{"email": "x@example.com"}]') $$);
RESET SESSION AUTHORIZATION;

-- an administrator sees every workspace and may read secrets
SET SESSION AUTHORIZATION rls_admin;
SELECT workspace_id, count(*) FROM broadcast.contacts WHERE workspace_id IN ('wa', 'wb') GROUP BY 1 ORDER BY 1;
SELECT workspace_id, integration_id, secret FROM broadcast.integration_secrets WHERE workspace_id IN ('wa', 'wb') ORDER BY 1, 2;
RESET SESSION AUTHORIZATION;

-- revoking access takes effect at once
SELECT broadcast.revoke_workspace('wa', 'rls_alice');
SET SESSION AUTHORIZATION rls_alice;
SELECT count(*) AS visible_contacts FROM broadcast.contacts;
RESET SESSION AUTHORIZATION;

-- every SECURITY DEFINER function pins its search_path
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'broadcast' AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
SELECT count(*) > 0 AS has_definer_functions FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'broadcast' AND p.prosecdef;

SELECT broadcast.drop_workspace('wa'), broadcast.drop_workspace('wb');
DELETE FROM broadcast.shared_integrations WHERE shared_id = 'plat';
DROP SCHEMA t CASCADE;
