-- Integration targets (no SSRF): unless a superuser allows private endpoints,
-- the API refuses literal non-public addresses and internal names, and plain
-- http or SMTP without TLS unless insecure transport is allowed.  And a
-- paused broadcast's queue rows follow its integration.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

CREATE SCHEMA ep;
CREATE FUNCTION ep.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; hnt text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || coalesce(nullif(' / hint: ' || hnt, ' / hint: '), '');
END
$$;

SELECT broadcast.create_workspace('ep', 'Endpoints', 'UTC', '{"default_from_email": "news@ep.test"}');

-- test/regress.conf allows both for the other suites; the defaults are off
SET broadcast_engine.allow_private_endpoints = off;
SHOW broadcast_engine.allow_private_endpoints;

-- every kind of non-public literal, and names that can only be internal
SELECT e AS endpoint, ep.err(format($$SELECT broadcast.create_integration('ep', 'x', 'sendgrid', %L, 'k')$$,
								  jsonb_build_object('endpoint', e))) AS result
  FROM unnest(ARRAY[
	'http://127.0.0.1:9', 'https://127.0.0.1', 'https://127.1', 'https://2130706433', 'https://0x7f.0.0.1',
	'https://10.1.2.3', 'https://172.16.0.1', 'https://192.168.1.1', 'https://100.64.0.1',
	'https://169.254.169.254/latest/meta-data', 'https://0.0.0.0', 'https://224.0.0.1', 'https://255.255.255.255',
	'https://[::1]:8080', 'https://[::]', 'https://[::ffff:127.0.0.1]', 'https://[::ffff:a9fe:a9fe]',
	'https://[fe80::1]', 'https://[fd00::1]', 'https://[ff02::1]', 'https://[64:ff9b::7f00:1]',
	'https://[2002:7f00:1::1]', 'https://localhost:8080', 'https://LOCALHOST.', 'https://api.localhost',
	'https://metadata.google.internal', 'https://mailhog', 'https://printer.local']) e;

SELECT h AS smtp_host, ep.err(format($$SELECT broadcast.create_integration('ep', 'x', 'smtp', %L)$$,
								   jsonb_build_object('host', h))) AS result
  FROM unnest(ARRAY['127.0.0.1', 'localhost', '::1', '[::1]', '10.0.0.5', '::ffff:10.0.0.5', 'smtp']) h;

-- public targets pass
SELECT broadcast.create_integration('ep', 'sg', 'sendgrid', '{"endpoint": "https://api.sendgrid.com"}', 'k');
SELECT broadcast.create_integration('ep', 'ip', 'postmark', '{"endpoint": "https://93.184.216.34/"}', 'k');
SELECT broadcast.create_integration('ep', 'a', 'smtp', '{"host": "smtp.example.com"}');
SELECT broadcast.create_integration('ep', 'b', 'smtp', '{"host": "[2001:4860:4860::8888]", "port": 465, "tls": "implicit"}');
SELECT broadcast.create_integration('ep', 'c', 'smtp', '{"host": "8.8.8.8"}');

-- plain http and SMTP without TLS need allow_insecure_transport
SET broadcast_engine.allow_insecure_transport = off;
SELECT ep.err($$SELECT broadcast.create_integration('ep', 'x', 'sendgrid', '{"endpoint": "http://api.example.com"}', 'k')$$);
SELECT ep.err($$SELECT broadcast.create_integration('ep', 'x', 'smtp', '{"host": "smtp.example.com", "tls": "none"}')$$);

-- update_integration and create_shared_integration are checked the same way
SELECT ep.err($$SELECT broadcast.update_integration('ep', 'sg', config => '{"endpoint": "https://[::1]"}')$$);
SELECT ep.err($$SELECT broadcast.update_integration('ep', 'a', config => '{"host": "192.168.0.10"}')$$);
SELECT ep.err($$SELECT broadcast.create_shared_integration('plat', 'sendgrid', '{"endpoint": "https://10.0.0.1"}', 'k')$$);
-- the owner's own writes too
SELECT ep.err($$UPDATE broadcast.integrations SET config = '{"endpoint": "https://169.254.169.254"}' WHERE workspace_id = 'ep' AND integration_id = 'sg'$$);
-- nothing was written
SELECT integration_id, config FROM broadcast.integrations WHERE workspace_id = 'ep' ORDER BY 1;
SELECT count(*) AS shared FROM broadcast.shared_integrations WHERE shared_id = 'plat';

-- a superuser may allow private targets; a config kept as it was is not checked again
SET broadcast_engine.allow_private_endpoints = on;
SET broadcast_engine.allow_insecure_transport = on;
SELECT broadcast.create_integration('ep', 'local', 'sendgrid', '{"endpoint": "http://127.0.0.1:9"}', 'k');
RESET broadcast_engine.allow_insecure_transport;
SET broadcast_engine.allow_private_endpoints = off;
SELECT broadcast.update_integration('ep', 'local', rate_per_second => 5);
SELECT ep.err($$SELECT broadcast.update_integration('ep', 'local', config => '{"endpoint": "http://127.0.0.2:9"}')$$);

-- only a superuser can change the settings
CREATE ROLE regress_ep_tenant;
GRANT USAGE ON SCHEMA ep TO regress_ep_tenant;
SET ROLE regress_ep_tenant;
SELECT ep.err($$SET broadcast_engine.allow_private_endpoints = on$$);
SELECT ep.err($$SET broadcast_engine.allow_insecure_transport = on$$);
RESET ROLE;
-- an administrator's direct writes are checked too (the trigger runs as the writer)
CREATE ROLE regress_ep_admin IN ROLE broadcast_admin;
GRANT USAGE ON SCHEMA ep TO regress_ep_admin;
SET ROLE regress_ep_admin;
SELECT ep.err($$UPDATE broadcast.integrations SET config = '{"endpoint": "https://10.9.9.9"}' WHERE workspace_id = 'ep' AND integration_id = 'sg'$$);
SELECT ep.err($$UPDATE broadcast.integrations SET config = '{"endpoint": "https://eu.api.sendgrid.com"}' WHERE workspace_id = 'ep' AND integration_id = 'sg'$$);
RESET ROLE;
SELECT config FROM broadcast.integrations WHERE workspace_id = 'ep' AND integration_id = 'sg';
REVOKE USAGE ON SCHEMA ep FROM regress_ep_tenant, regress_ep_admin;
DROP ROLE regress_ep_tenant, regress_ep_admin;

-- a paused broadcast's queue rows follow update_broadcast(integration_id => ...)
SELECT broadcast.create_list('ep', 'l', 'L');
SELECT broadcast.subscribe('ep', 'l', ARRAY['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']);
SELECT broadcast.create_template('ep', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_broadcast('ep', 'bc', 'BC', '{l}', 'a', 't');
SELECT broadcast.schedule_broadcast('ep', 'bc') IS NOT NULL AS scheduled;
CALL broadcast.run_tasks(5);
SELECT broadcast.pause_broadcast('ep', 'bc');
-- a row a sender holds in flight keeps its integration until the sender records it
UPDATE broadcast.email_queue SET lease_until = now() + interval '1 hour', attempts = 1
 WHERE workspace_id = 'ep' AND broadcast_id = 'bc' AND email = 'd@example.com';
UPDATE broadcast.email_queue SET status = 'dead' WHERE workspace_id = 'ep' AND broadcast_id = 'bc' AND email = 'c@example.com';
SELECT broadcast.update_broadcast('ep', 'bc', integration_id => 'c');
SELECT email, status, integration_id FROM broadcast.email_queue WHERE workspace_id = 'ep' ORDER BY email;
-- a change of name alone moves nothing
SELECT broadcast.update_broadcast('ep', 'bc', name => 'Renamed');
SELECT integration_id, count(*) FROM broadcast.email_queue WHERE workspace_id = 'ep' GROUP BY 1 ORDER BY 1;
SELECT broadcast.cancel_broadcast('ep', 'bc') >= 0 AS cancelled;

RESET broadcast_engine.allow_private_endpoints;
SELECT broadcast.drop_workspace('ep');
DROP SCHEMA ep CASCADE;
