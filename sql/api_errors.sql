-- Every validation error: a clear ERROR with a SQLSTATE, and nothing written.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
SET datestyle = 'ISO';

CREATE SCHEMA t;
-- runs a statement and reports the error it raised, as SQLSTATE: message / detail / hint
CREATE FUNCTION t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
							hnt = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || coalesce(nullif(' / ' || det, ' / '), '') || coalesce(nullif(' / hint: ' || hnt, ' / hint: '), '');
END
$$;
-- a fingerprint of all user-visible state, to show a failed call wrote nothing
CREATE FUNCTION t.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
		SELECT format('%s', w) FROM broadcast.workspaces w UNION ALL
		SELECT format('%s', c) FROM broadcast.contacts c UNION ALL
		SELECT format('%s', l) FROM broadcast.lists l UNION ALL
		SELECT format('%s', m) FROM broadcast.list_members m UNION ALL
		SELECT format('%s', s) FROM broadcast.suppressions s UNION ALL
		SELECT format('%s', p) FROM broadcast.templates p UNION ALL
		SELECT format('%s', i) FROM broadcast.integrations i UNION ALL
		SELECT format('%s', s) FROM broadcast.integration_secrets s UNION ALL
		SELECT format('%s', b) FROM broadcast.broadcasts b UNION ALL
		SELECT format('%s', v) FROM broadcast.broadcast_variations v UNION ALL
		SELECT format('%s', k) FROM broadcast.tasks k) s(x)
$$;

SELECT broadcast.create_workspace('err', 'Errors Inc', settings => '{"default_from_email": "e@err.test"}');
SELECT broadcast.create_list('err', 'main', 'Main');
SELECT broadcast.subscribe('err', 'main', ARRAY['a@example.com']);
SELECT broadcast.create_template('err', 'tpl', 'Subject', '<p>x</p>');
SELECT broadcast.create_template('err', 'tpl2', 'Subject 2', '<p>y</p>');
SELECT broadcast.create_integration('err', 'smtp', 'smtp', '{"host": "localhost"}');
SELECT broadcast.create_broadcast('err', 'b1', 'B1', ARRAY['main'], 'smtp', 'tpl');
CREATE TABLE t.before AS SELECT t.state() AS s;

-- workspaces
SELECT t.err($$ SELECT broadcast.create_workspace('err', 'Again') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('bad id!', 'X') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('w2', '') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('w2', 'X', 'Mars/Olympus') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('w2', 'X', 'UTC', '[1]') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('w2', 'X', 'UTC', '{"sending_domian": "x.test"}') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('w2', 'X', 'UTC', '{"unsubscribe_base_url": "javascript:alert(1)"}') $$);
SELECT t.err($$ SELECT broadcast.create_workspace('w2', 'X', 'UTC', '{"default_from_name": "A\nBcc: x@y.z"}') $$);

-- unknown objects
SELECT t.err($$ SELECT broadcast.create_list('nope', 'l', 'L') $$);
SELECT t.err($$ SELECT broadcast.subscribe('err', 'nolist', ARRAY['a@example.com']) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main', 'ghost'], 'smtp', 'tpl') $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'nointeg', 'tpl') $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', 'notpl') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('err', 'ghost') $$);

-- contacts and emails
SELECT t.err($$ SELECT broadcast.upsert_contacts('err', '{"email": "a@example.com"}') $$);
SELECT t.err($$ SELECT broadcast.upsert_contacts('err', '[{"email": "ok@example.com"}, {"email": "not-an-email"}]') $$);
SELECT t.err($$ SELECT broadcast.upsert_contacts('err', '[{"email": "ok@example.com", "nmae": "typo"}]') $$);
SELECT t.err($$ SELECT broadcast.upsert_contacts('err', '[{"email": "ok@example.com", "properties": [1]}]') $$);
SELECT t.err($$ SELECT broadcast.upsert_contacts('err', '[{"email": "ok@example.com", "timezone": "Europe/Atlantis"}]') $$);
SELECT t.err($$ SELECT broadcast.upsert_contacts('err', '[{"email": "a@b.c\r\nBcc: x@y.z"}]') $$);
SELECT t.err($$ SELECT broadcast.subscribe('err', 'main', ARRAY['ok@example.com', 'x@@example.com']) $$);
SELECT t.err($$ SELECT broadcast.subscribe('err', 'main', ARRAY['ok@example.com'], 'unsubscribed') $$);
SELECT t.err($$ SELECT broadcast.unsubscribe_contact('err', 'nobody@example.com') $$);
SELECT t.err($$ SELECT broadcast.unsubscribe_contact('err', 'a@example.com', 'nolist') $$);
SELECT t.err($$ SELECT broadcast.create_list('err', 'main', 'Again') $$);

-- templates: header-bound fields cannot carry line breaks
SELECT t.err($$ SELECT broadcast.create_template('err', 'x', E'Hi\r\nBcc: victim@example.com', '<p/>') $$);
SELECT t.err($$ SELECT broadcast.create_template('err', 'x', 'Hi', '<p/>', from_name => E'Acme\nX-Evil: 1') $$);
SELECT t.err($$ SELECT broadcast.create_template('err', 'x', 'Hi', '<p/>', reply_to => E'a@example.com\nBcc: b@example.com') $$);
SELECT t.err($$ SELECT broadcast.create_template('err', 'x', 'Hi', '<p/>', from_email => 'nobody') $$);
SELECT t.err($$ SELECT broadcast.create_template('err', 'x', '', '<p/>') $$);
SELECT t.err($$ SELECT broadcast.create_template('err', 'x', 'Hi', NULL) $$);
SELECT t.err($$ UPDATE broadcast.templates SET subject = 'changed' WHERE workspace_id = 'err' $$);

-- integrations: config checked per provider
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'carrierpigeon', '{}') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'smtp', '{"port": 25}') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'smtp', '{"host": "h", "port": 70000}') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'smtp', '{"host": "h", "tls": "maybe"}') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'smtp', '{"host": "h", "username": "u"}') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'mailgun', '{"region": "eu"}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'mailgun', '{"domain": "d.test", "region": "mars"}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'ses', '{"region": "eu-west-1"}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'ses', '{"region": "paris", "access_key_id": "A"}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'mailjet', '{}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'sendgrid', '{}') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'sendgrid', '{"endpoint": "ftp://x"}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'sendgrid', '{"endpiont": "https://x"}', 'k') $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'i', 'resend', '{}', 'k', 0) $$);
SELECT t.err($$ SELECT broadcast.create_integration('err', 'smtp', 'smtp', '{"host": "h"}') $$);
SELECT t.err($$ SELECT broadcast.attach_shared_integration('err', 'p', 'no-such-shared') $$);

-- broadcasts and A/B settings
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY[]::text[], 'smtp', 'tpl') $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp') $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', 'tpl', variations => ARRAY['tpl', 'tpl2'], ab_sample_percent => 10) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl'], ab_sample_percent => 10) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl', 'tpl'], ab_sample_percent => 10) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl', 'tpl2'], ab_sample_percent => 0) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl', 'tpl2'], ab_sample_percent => 101) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl', 'tpl2']) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl', 'tpl2'], ab_sample_percent => 10, ab_metric => 'reply') $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', variations => ARRAY['tpl', 'tpl2'], ab_sample_percent => 10, ab_duration => '-1 hour') $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b2', 'B2', ARRAY['main'], 'smtp', 'tpl', ab_sample_percent => 10) $$);
SELECT t.err($$ SELECT broadcast.create_broadcast('err', 'b1', 'Again', ARRAY['main'], 'smtp', 'tpl') $$);

-- scheduling
SELECT t.err($$ SELECT broadcast.schedule_broadcast('err', 'b1', '2020-01-01 00:00:00+00') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('err', 'b1', '2020-01-01 09:00'::timestamp, 'Europe/Paris') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('err', 'b1', '2999-01-01 09:00'::timestamp, 'Europe/Pariss') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('err', 'b1', '2020-01-01 09:00'::timestamp, 'UTC', true) $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('err', 'b1', NULL::timestamptz) $$);

-- nothing above wrote anything
SELECT t.state() = s AS unchanged FROM t.before;
SELECT broadcast.drop_workspace('err');
DROP SCHEMA t CASCADE;
