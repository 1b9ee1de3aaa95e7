-- The orchestrator, driven step by step with CALL broadcast.run_tasks().
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

SELECT broadcast.create_workspace('orc', 'Orchestrator', 'Europe/Paris', '{"default_from_email": "news@orc.test"}');
SELECT broadcast.create_template('orc', 'red', 'Red', '<p>red</p>');
SELECT broadcast.create_template('orc', 'blue', 'Blue', '<p>blue</p>');
SELECT broadcast.create_integration('orc', 'smtp', 'smtp', '{"host": "localhost"}');
SELECT broadcast.create_list('orc', 'l1', 'One'), broadcast.create_list('orc', 'l2', 'Two'),
	   broadcast.create_list('orc', 'vip', 'VIP'), broadcast.create_list('orc', 'noway', 'Excluded');

-- the audience: two overlapping lists, every member status, a suppression and an exclusion list
SELECT broadcast.subscribe('orc', 'l1', ARRAY(SELECT 'p' || lpad(i::text, 4, '0') || '@example.com' FROM generate_series(1, 300) i));
SELECT broadcast.subscribe('orc', 'l2', ARRAY(SELECT 'p' || lpad(i::text, 4, '0') || '@example.com' FROM generate_series(201, 500) i));
SELECT broadcast.subscribe('orc', 'l2', ARRAY['pend@example.com'], 'pending');
SELECT broadcast.subscribe('orc', 'l1', ARRAY['unsub@example.com', 'bounce@example.com', 'complain@example.com', 'suppressed@example.com', 'excluded@example.com']);
UPDATE broadcast.list_members SET status = 'bounced' WHERE workspace_id = 'orc' AND email = 'bounce@example.com';
UPDATE broadcast.list_members SET status = 'complained' WHERE workspace_id = 'orc' AND email = 'complain@example.com';
SELECT broadcast.unsubscribe_contact('orc', 'unsub@example.com', 'l1');
INSERT INTO broadcast.suppressions (workspace_id, email, reason) VALUES ('orc', 'suppressed@example.com', 'hard_bounce');
SELECT broadcast.subscribe('orc', 'noway', ARRAY['excluded@example.com', 'p0007@example.com']);

-- small chunks so the keyset cursor crosses many transactions
SET broadcast_engine.chunk_size = 37;
SHOW broadcast_engine.chunk_size;

SELECT broadcast.create_broadcast('orc', 'plain', 'Plain', ARRAY['l1', 'l2'], 'smtp', 'red',
								  exclude_lists => ARRAY['noway']);
SELECT broadcast.schedule_broadcast('orc', 'plain') IS NOT NULL AS scheduled;
CALL broadcast.run_tasks(30);

-- 500 distinct addresses, minus p0007 (excluded list); nobody twice; no excluded status
SELECT status, total_recipients, enqueued_count, started_at IS NOT NULL AS started
  FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
SELECT status, phase, attempts, last_error FROM broadcast.tasks WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
SELECT count(*) AS rows, count(DISTINCT email) AS distinct_emails, count(DISTINCT message_id) AS distinct_ids,
	   min(email), max(email), bool_and(variation = 0) AS all_variation_0,
	   bool_and(next_attempt_at <= now()) AS all_due_now
  FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
SELECT e AS must_not_be_queued FROM unnest(ARRAY['pend@example.com', 'unsub@example.com', 'bounce@example.com',
	'complain@example.com', 'suppressed@example.com', 'excluded@example.com', 'p0007@example.com']) e
 WHERE EXISTS (SELECT 1 FROM broadcast.email_queue q WHERE q.workspace_id = 'orc' AND q.email = e);
-- each row names a list the address is active on
SELECT count(*) AS rows_with_wrong_list FROM broadcast.email_queue q
 WHERE q.workspace_id = 'orc' AND q.broadcast_id = 'plain'
   AND NOT EXISTS (SELECT 1 FROM broadcast.list_members m WHERE m.workspace_id = 'orc'
					 AND m.list_id = q.list_id AND m.email = q.email AND m.status = 'active');

-- message ids are time-ordered UUIDs (version 7, RFC 9562 variant) made at expansion
SELECT bool_and(substr(message_id::text, 15, 1) = '7') AS version_7,
	   bool_and(substr(message_id::text, 20, 1) IN ('8', '9', 'a', 'b')) AS rfc_variant,
	   bool_and(abs(extract(epoch FROM now()) * 1000
					- ('x' || translate(left(message_id::text, 13), '-', ''))::bit(48)::bigint) < 600000) AS stamped_now
  FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'plain';

-- running again changes nothing while the queue drains
CALL broadcast.run_tasks(5);
SELECT count(*) AS rows FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'plain';

-- once the queue is empty the broadcast completes, in one step
DELETE FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
CALL broadcast.run_tasks(5);
SELECT status, completed_at IS NOT NULL AS stamped FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
SELECT status, phase FROM broadcast.tasks WHERE workspace_id = 'orc' AND broadcast_id = 'plain';
SELECT count(*) AS progress_rows FROM broadcast.progress WHERE workspace_id = 'orc' AND broadcast_id = 'plain';

-- a broadcast scheduled for later does nothing until it is due
SELECT broadcast.create_broadcast('orc', 'later', 'Later', ARRAY['vip'], 'smtp', 'red');
SELECT broadcast.schedule_broadcast('orc', 'later', now() + interval '1 hour') IS NOT NULL;
CALL broadcast.run_tasks(2);
SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'later';
SELECT broadcast.cancel_broadcast('orc', 'later');

-- paused before it starts: nothing happens until it is resumed
SELECT broadcast.create_broadcast('orc', 'paused', 'Paused', ARRAY['l1'], 'smtp', 'red');
SELECT broadcast.schedule_broadcast('orc', 'paused') IS NOT NULL;
SELECT broadcast.pause_broadcast('orc', 'paused');
CALL broadcast.run_tasks(2);
SELECT count(*) AS rows_while_paused FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'paused';
SELECT broadcast.resume_broadcast('orc', 'paused');
CALL broadcast.run_tasks(10);
SELECT status, enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'paused';
-- paused while draining: the task waits, the queue stays
SELECT broadcast.pause_broadcast('orc', 'paused');
SELECT status, phase FROM broadcast.tasks WHERE workspace_id = 'orc' AND broadcast_id = 'paused' AND status <> 'completed';
DELETE FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'paused';
CALL broadcast.run_tasks(2);
SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'paused';
SELECT broadcast.resume_broadcast('orc', 'paused');
CALL broadcast.run_tasks(5);
SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'paused';

-- cancelled while sending: pending rows go, history stays, the task ends
SELECT broadcast.create_broadcast('orc', 'cancelme', 'Cancel me', ARRAY['l2'], 'smtp', 'red');
SELECT broadcast.schedule_broadcast('orc', 'cancelme') IS NOT NULL;
CALL broadcast.run_tasks(10);
SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'cancelme';
SELECT broadcast.cancel_broadcast('orc', 'cancelme') AS dropped;
CALL broadcast.run_tasks(2);
SELECT b.status, t.status AS task_status,
	   (SELECT count(*) FROM broadcast.email_queue q WHERE q.workspace_id = 'orc' AND q.broadcast_id = 'cancelme') AS queue_rows
  FROM broadcast.broadcasts b JOIN broadcast.tasks t USING (workspace_id, broadcast_id)
 WHERE b.workspace_id = 'orc' AND b.broadcast_id = 'cancelme';

-- recipient time zones, across the US daylight saving change (second Sunday of March 2999 is the 10th)
SELECT broadcast.upsert_contacts('orc', '[
	{"email": "ny@example.com", "timezone": "America/New_York"},
	{"email": "tokyo@example.com", "timezone": "Asia/Tokyo"},
	{"email": "london@example.com", "timezone": "Europe/London"},
	{"email": "paris@example.com"}]');
SELECT broadcast.subscribe('orc', 'vip', ARRAY['ny@example.com', 'tokyo@example.com', 'london@example.com', 'paris@example.com']);
SELECT broadcast.create_broadcast('orc', 'tz-after', 'After DST', ARRAY['vip'], 'smtp', 'red');
SELECT broadcast.create_broadcast('orc', 'tz-before', 'Before DST', ARRAY['vip'], 'smtp', 'red');
SELECT broadcast.schedule_broadcast('orc', 'tz-after', '2999-03-10 09:00', 'America/New_York', true) IS NOT NULL;
SELECT broadcast.schedule_broadcast('orc', 'tz-before', '2999-03-09 09:00', 'America/New_York', true) IS NOT NULL;
CALL broadcast.run_tasks(10);
SELECT broadcast_id, email, next_attempt_at FROM broadcast.email_queue
 WHERE workspace_id = 'orc' AND broadcast_id LIKE 'tz-%' ORDER BY 1, 3, 2;

-- A/B: 20% of 500 is a test sample of 100, split 50/50, chosen by a stable hash
SELECT broadcast.create_broadcast('orc', 'ab', 'A/B', ARRAY['l1', 'l2'], 'smtp',
	variations => ARRAY['red', 'blue'], ab_sample_percent => 20, ab_metric => 'open',
	ab_duration => '10 milliseconds');
SELECT broadcast.schedule_broadcast('orc', 'ab') IS NOT NULL;
CALL broadcast.run_tasks(10);
SELECT status, total_recipients, test_recipients, enqueued_count FROM broadcast.broadcasts
 WHERE workspace_id = 'orc' AND broadcast_id = 'ab';
SELECT variation, count(*) FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'ab'
 GROUP BY 1 ORDER BY 1;
-- not an alphabetical prefix
SELECT count(*) FILTER (WHERE email <= 'p0100@example.com') < 90 AS not_a_prefix
  FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'ab';
CREATE TEMP TABLE sample1 AS SELECT email, variation FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'ab';
-- paused while the test is out: the task waits; resumed: it is testing again
SELECT broadcast.pause_broadcast('orc', 'ab');
CALL broadcast.run_tasks(2);
SELECT b.status, b.paused_from, t.status AS task_status, t.phase FROM broadcast.broadcasts b
  JOIN broadcast.tasks t USING (workspace_id, broadcast_id) WHERE b.workspace_id = 'orc' AND b.broadcast_id = 'ab';
SELECT broadcast.resume_broadcast('orc', 'ab');
CALL broadcast.run_tasks(2);
SELECT b.status, t.status AS task_status, t.phase FROM broadcast.broadcasts b
  JOIN broadcast.tasks t USING (workspace_id, broadcast_id) WHERE b.workspace_id = 'orc' AND b.broadcast_id = 'ab';

-- the same broadcast id over the same audience draws the same sample
SELECT broadcast.create_workspace('orc2', 'Copy', 'Europe/Paris', '{"default_from_email": "news@orc.test"}');
SELECT broadcast.create_template('orc2', 'red', 'Red', '<p>red</p>'), broadcast.create_template('orc2', 'blue', 'Blue', '<p>blue</p>');
SELECT broadcast.create_integration('orc2', 'smtp', 'smtp', '{"host": "localhost"}');
SELECT broadcast.create_list('orc2', 'l1', 'One');
SELECT broadcast.subscribe('orc2', 'l1', ARRAY(SELECT email FROM broadcast.list_members m
	WHERE m.workspace_id = 'orc' AND m.list_id IN ('l1', 'l2') AND m.status = 'active' AND m.email <> 'p0007@example.com'));
SELECT broadcast.create_broadcast('orc2', 'ab', 'A/B', ARRAY['l1'], 'smtp', variations => ARRAY['red', 'blue'], ab_sample_percent => 20);
SELECT broadcast.schedule_broadcast('orc2', 'ab') IS NOT NULL;
CALL broadcast.run_tasks(10);
SELECT count(*) AS same_sample FROM broadcast.email_queue q JOIN sample1 s USING (email, variation)
 WHERE q.workspace_id = 'orc2' AND q.broadcast_id = 'ab';

-- the test is sent; blue gets more opens
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, variation, email, status, sent_at, opened_at)
SELECT 'orc', q.message_id, 'ab', CASE q.variation WHEN 0 THEN 'red' ELSE 'blue' END, q.variation, q.email, 'sent', now(),
	   CASE WHEN (q.variation = 1 AND row_number() OVER (PARTITION BY q.variation ORDER BY q.email) <= 20)
			  OR (q.variation = 0 AND row_number() OVER (PARTITION BY q.variation ORDER BY q.email) <= 5) THEN now() END
  FROM broadcast.email_queue q WHERE q.workspace_id = 'orc' AND q.broadcast_id = 'ab';
DELETE FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'ab';
-- (the senders keep a broadcast's message id range as they record: this test writes the rows itself)
SELECT broadcast.refresh_broadcast_ranges('orc') AS ranges;
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'orc' AND broadcast_id = 'ab';
CALL broadcast.run_tasks(5);
SELECT pg_sleep(0.05);
CALL broadcast.run_tasks(10);
-- the winner was picked from the open rates and sent to the other 400
SELECT status, winner_template_id, test_completed_at IS NOT NULL AS test_done, total_recipients, enqueued_count
  FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'ab';
SELECT variation, count(*) FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'ab'
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS overlap_with_sample FROM broadcast.email_queue q JOIN sample1 s USING (email)
 WHERE q.workspace_id = 'orc' AND q.broadcast_id = 'ab';

-- manual winner: without ab_auto the test waits for select_winner
SELECT broadcast.create_broadcast('orc', 'manual', 'Manual', ARRAY['l1'], 'smtp',
	variations => ARRAY['red', 'blue'], ab_sample_percent => 10, ab_auto => false);
SELECT broadcast.schedule_broadcast('orc', 'manual') IS NOT NULL;
CALL broadcast.run_tasks(5);
DELETE FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'manual';
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'orc' AND broadcast_id = 'manual';
CALL broadcast.run_tasks(5);
SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'manual';
SELECT broadcast.select_winner('orc', 'manual', 'red');
CALL broadcast.run_tasks(5);
SELECT status, winner_template_id, enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'orc' AND broadcast_id = 'manual';
SELECT variation, count(*) FROM broadcast.email_queue WHERE workspace_id = 'orc' AND broadcast_id = 'manual' GROUP BY 1;

-- a step that fails is retried with backoff, then fails the broadcast with the error
SELECT broadcast.create_broadcast('orc', 'doomed', 'Doomed', ARRAY['l1'], 'smtp', 'red');
SELECT broadcast.schedule_broadcast('orc', 'doomed') IS NOT NULL;
DELETE FROM broadcast.broadcast_variations WHERE workspace_id = 'orc' AND broadcast_id = 'doomed';
SET broadcast_engine.task_retry_base = 0;
UPDATE broadcast.tasks SET max_attempts = 2 WHERE workspace_id = 'orc' AND broadcast_id = 'doomed';
CALL broadcast.run_tasks(3);
SELECT t.status, t.attempts, t.last_error, b.status AS broadcast_status, b.last_error AS broadcast_error
  FROM broadcast.tasks t JOIN broadcast.broadcasts b USING (workspace_id, broadcast_id)
 WHERE t.workspace_id = 'orc' AND t.broadcast_id = 'doomed';

-- run_tasks commits as it goes, so it refuses to run inside a transaction block
BEGIN;
CALL broadcast.run_tasks(1);
ROLLBACK;
CALL broadcast.run_tasks(0);

SELECT broadcast.drop_workspace('orc'), broadcast.drop_workspace('orc2');
