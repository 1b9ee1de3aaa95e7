-- forget_contact: a person removed from a workspace, history kept without the address
SET client_min_messages = warning;
SELECT broadcast.create_workspace('era', 'Erasure', 'UTC', '{"default_from_email": "news@era.test"}');
SELECT broadcast.upsert_contacts('era', '[{"email": "Ada@Example.com", "first_name": "Ada"}, {"email": "bob@example.com"}]');
SELECT broadcast.create_list('era', 'l', 'L');
SELECT broadcast.subscribe('era', 'l', ARRAY['ada@example.com', 'bob@example.com']);
SELECT broadcast.create_template('era', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_integration('era', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 9}');
SELECT broadcast.create_broadcast('era', 'b', 'B', '{l}', 'smtp', 't');
SELECT broadcast.schedule_broadcast('era', 'b') IS NOT NULL;
CALL broadcast.run_tasks(5);
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email, status, sent_at, opened_at)
VALUES ('era', '00000000-0000-7000-8000-000000000001', 'old', 't', 'l', 'ada@example.com', 'sent', now(), now()),
	   ('era', '00000000-0000-7000-8000-000000000002', 'old', 't', 'l', 'bob@example.com', 'sent', now(), NULL);
SELECT email FROM broadcast.email_queue WHERE workspace_id = 'era' ORDER BY 1;

SELECT broadcast.forget_contact('era', 'ADA@example.com') AS history_rows_anonymised;
SELECT count(*) FILTER (WHERE email = 'ada@example.com') AS contacts_left, count(*) AS contacts
  FROM broadcast.contacts WHERE workspace_id = 'era';
SELECT count(*) AS memberships_left FROM broadcast.list_members WHERE workspace_id = 'era' AND email = 'ada@example.com';
SELECT email FROM broadcast.email_queue WHERE workspace_id = 'era' ORDER BY 1;
SELECT email LIKE 'forgotten-%@invalid' AS anonymous, status, opened_at IS NOT NULL AS events_kept
  FROM broadcast.message_history WHERE workspace_id = 'era' AND message_id = '00000000-0000-7000-8000-000000000001';
SELECT count(*) AS history_with_the_address FROM broadcast.message_history WHERE workspace_id = 'era' AND email = 'ada@example.com';
SELECT email, reason, detail FROM broadcast.suppressions WHERE workspace_id = 'era';
-- a later import and broadcast do not reach the address again
SELECT broadcast.upsert_contacts('era', '[{"email": "ada@example.com"}]');
SELECT broadcast.subscribe('era', 'l', ARRAY['ada@example.com']);
SELECT broadcast.create_broadcast('era', 'b2', 'B2', '{l}', 'smtp', 't');
SELECT broadcast.schedule_broadcast('era', 'b2') IS NOT NULL;
CALL broadcast.run_tasks(5);
SELECT broadcast_id, email FROM broadcast.email_queue WHERE workspace_id = 'era' AND broadcast_id = 'b2' ORDER BY 2;

-- without keeping the suppression, nothing of the address is left
SELECT broadcast.forget_contact('era', 'ada@example.com', keep_suppression => false) >= 0 AS done;
SELECT (SELECT count(*) FROM broadcast.suppressions WHERE workspace_id = 'era' AND email = 'ada@example.com')
	 + (SELECT count(*) FROM broadcast.contacts WHERE workspace_id = 'era' AND email = 'ada@example.com')
	 + (SELECT count(*) FROM broadcast.list_members WHERE workspace_id = 'era' AND email = 'ada@example.com')
	 + (SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'era' AND email = 'ada@example.com')
	 + (SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'era' AND email = 'ada@example.com')
	   AS rows_with_the_address;

-- bad input: a clear error, nothing changed
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || msg;
END
$$;
SELECT pg_temp.err(s) FROM unnest(ARRAY[
	$q$SELECT broadcast.forget_contact('era', 'not an address')$q$,
	$q$SELECT broadcast.forget_contact('era', 'bob@example.com', NULL)$q$,
	$q$SELECT broadcast.forget_contact('nows', 'bob@example.com')$q$]) s;
SELECT count(*) AS bob_still_there FROM broadcast.contacts WHERE workspace_id = 'era' AND email = 'bob@example.com';

SELECT broadcast.drop_workspace('era');

-- drop_list: memberships go, contacts stay; refused while a broadcast that has not ended uses the list
SELECT broadcast.create_workspace('dl', 'Drop lists', 'UTC', '{"default_from_email": "news@dl.test"}');
SELECT broadcast.upsert_contacts('dl', '[{"email": "a@example.com"}, {"email": "b@example.com"}]');
SELECT broadcast.create_list('dl', 'keep', 'Keep');
SELECT broadcast.create_list('dl', 'old', 'Old');
SELECT broadcast.subscribe('dl', 'old', ARRAY['a@example.com', 'b@example.com']);
SELECT broadcast.subscribe('dl', 'keep', ARRAY['a@example.com']);
SELECT broadcast.create_template('dl', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_integration('dl', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 9}');
SELECT broadcast.create_broadcast('dl', 'draft', 'Draft', '{keep}', 'smtp', 't', exclude_lists => '{old}');
SELECT pg_temp.err($q$SELECT broadcast.drop_list('dl', 'old')$q$);
SELECT pg_temp.err($q$SELECT broadcast.drop_list('dl', 'nolist')$q$);
SELECT count(*) AS old_members_still FROM broadcast.list_members WHERE workspace_id = 'dl' AND list_id = 'old';
SELECT broadcast.schedule_broadcast('dl', 'draft', now() + interval '1 day') IS NOT NULL;
SELECT broadcast.cancel_broadcast('dl', 'draft');
SELECT broadcast.drop_list('dl', 'old') AS memberships_removed;
SELECT list_id, count(*) FROM broadcast.list_members WHERE workspace_id = 'dl' GROUP BY 1 ORDER BY 1;
SELECT list_id FROM broadcast.lists WHERE workspace_id = 'dl' ORDER BY 1;
SELECT count(*) AS contacts FROM broadcast.contacts WHERE workspace_id = 'dl';
SELECT broadcast.drop_workspace('dl');
