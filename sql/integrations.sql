-- update_integration: rotate a key, change config or the workspace's rate limit
SET client_min_messages = warning;
SELECT broadcast.create_workspace('upd', 'Updates');
SELECT broadcast.create_integration('upd', 'sg', 'sendgrid', '{"endpoint": "https://sg.example.com"}', 'SG.old', 10);
SELECT broadcast.create_integration('upd', 'mail', 'smtp', '{"host": "smtp.example.com", "port": 587}', 'pw');

-- rotate the key: only the secret changes
SELECT broadcast.update_integration('upd', 'sg', secret => 'SG.new');
SELECT s.secret, i.config, i.rate_per_second FROM broadcast.integrations i
  JOIN broadcast.integration_secrets s USING (workspace_id, integration_id)
 WHERE i.workspace_id = 'upd' AND i.integration_id = 'sg';
-- a new rate, then none
SELECT broadcast.update_integration('upd', 'sg', rate_per_second => 250);
SELECT rate_per_second FROM broadcast.integrations WHERE workspace_id = 'upd' AND integration_id = 'sg';
SELECT broadcast.update_integration('upd', 'sg', remove_rate_limit => true);
SELECT rate_per_second IS NULL AS no_limit FROM broadcast.integrations WHERE workspace_id = 'upd' AND integration_id = 'sg';
-- a new config, checked like a new integration's; the secret stays
SELECT broadcast.update_integration('upd', 'mail', config => '{"host": "smtp2.example.com", "port": 465, "tls": "implicit"}');
SELECT i.config, s.secret FROM broadcast.integrations i
  JOIN broadcast.integration_secrets s USING (workspace_id, integration_id)
 WHERE i.workspace_id = 'upd' AND i.integration_id = 'mail';

-- errors leave everything as it was
CREATE TABLE upd_before AS
SELECT i.*, s.secret FROM broadcast.integrations i
  JOIN broadcast.integration_secrets s USING (workspace_id, integration_id) WHERE i.workspace_id = 'upd';
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
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
SELECT pg_temp.err(s) FROM unnest(ARRAY[
	$q$SELECT broadcast.update_integration('upd', 'sg')$q$,
	$q$SELECT broadcast.update_integration('upd', 'sg', rate_per_second => 0)$q$,
	$q$SELECT broadcast.update_integration('upd', 'sg', rate_per_second => 5, remove_rate_limit => true)$q$,
	$q$SELECT broadcast.update_integration('upd', 'nope', secret => 'x')$q$,
	$q$SELECT broadcast.update_integration('upd', 'mail', config => '{"host": "smtp.example.com", "colour": "blue"}')$q$,
	$q$SELECT broadcast.update_integration('upd', 'mail', config => '{"host": "smtp.example.com", "port": 70000}')$q$,
	$q$SELECT broadcast.update_integration('upd', 'sg', secret => E'SG.bad\nX-Injected: 1')$q$,
	$q$SELECT broadcast.update_integration('nows', 'sg', secret => 'x')$q$]) s;
-- an attached shared integration: its config and key belong to the platform, the rate is ours
SELECT broadcast.create_shared_integration('upd_platform', 'sendgrid', '{}', 'SG.platform', 1000);
SELECT broadcast.attach_shared_integration('upd', 'shared', 'upd_platform', 50);
SELECT pg_temp.err($q$SELECT broadcast.update_integration('upd', 'shared', secret => 'SG.mine')$q$);
SELECT broadcast.update_integration('upd', 'shared', rate_per_second => 75);
SELECT rate_per_second FROM broadcast.integrations WHERE workspace_id = 'upd' AND integration_id = 'shared';
DELETE FROM upd_before;
INSERT INTO upd_before SELECT i.*, s.secret FROM broadcast.integrations i
  LEFT JOIN broadcast.integration_secrets s USING (workspace_id, integration_id) WHERE i.workspace_id = 'upd';
SELECT pg_temp.err($q$SELECT broadcast.update_integration('upd', 'shared', config => '{}', rate_per_second => 1)$q$);
SELECT count(*) AS changed FROM (
	(SELECT i.*, s.secret FROM broadcast.integrations i
	   LEFT JOIN broadcast.integration_secrets s USING (workspace_id, integration_id) WHERE i.workspace_id = 'upd')
	EXCEPT ALL SELECT * FROM upd_before) d;

-- a workspace role may rotate its own integration's key but not another workspace's
CREATE ROLE upd_member LOGIN;
CREATE ROLE upd_other LOGIN;
GRANT broadcast_user TO upd_member, upd_other;
SELECT broadcast.grant_workspace('upd', 'upd_member');
SET SESSION AUTHORIZATION upd_member;
SELECT broadcast.update_integration('upd', 'sg', secret => 'SG.member');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION upd_other;
SELECT pg_temp.err($q$SELECT broadcast.update_integration('upd', 'sg', secret => 'SG.other')$q$);
RESET SESSION AUTHORIZATION;
SELECT secret FROM broadcast.integration_secrets WHERE workspace_id = 'upd' AND integration_id = 'sg';

DROP TABLE upd_before;
SELECT broadcast.drop_workspace('upd');
DELETE FROM broadcast.shared_integrations WHERE shared_id = 'upd_platform';
DROP ROLE upd_member, upd_other;
