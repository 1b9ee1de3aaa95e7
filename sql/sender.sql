-- The sender's failure paths with send_queue(), without any server: refused
-- insecure transport, connection failures retried then dead-lettered,
-- dead letters re-queued, paused broadcasts left alone.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

SELECT broadcast.create_workspace('snd', 'Sender', 'UTC',
	'{"default_from_email": "news@snd.test", "sending_domain": "snd.test"}');
SELECT broadcast.create_list('snd', 'l', 'L');
SELECT broadcast.subscribe('snd', 'l', ARRAY['a@example.com', 'b@example.com', 'c@example.com']);
SELECT broadcast.create_template('snd', 't', 'Hi {{ contact.email }}', '<p>Hi</p>');
-- nothing listens on port 9 of the loopback address
SELECT broadcast.create_integration('snd', 'plain', 'sendgrid', '{"endpoint": "http://127.0.0.1:9"}', 'k');
-- (test/regress.conf allows it for creating the integration; the sender checks again)
SET broadcast_engine.allow_insecure_transport = off;

-- plain http is refused unless a superuser allows it: the mail is dead-lettered with the reason
SELECT broadcast.create_broadcast('snd', 'b1', 'B1', '{l}', 'plain', 't');
SELECT broadcast.schedule_broadcast('snd', 'b1') IS NOT NULL;
CALL broadcast.run_tasks(5);
CALL broadcast.send_queue(5);
SELECT email, status, attempts, last_error FROM broadcast.email_queue WHERE workspace_id = 'snd' ORDER BY email;
SELECT email, status, error FROM broadcast.message_history WHERE workspace_id = 'snd' ORDER BY email;
SELECT sent_count, failed_count FROM broadcast.broadcasts WHERE workspace_id = 'snd' AND broadcast_id = 'b1';
SELECT workspace_id, integration_id, pending, in_flight, due, dead FROM broadcast.queue_health WHERE workspace_id = 'snd';

-- allowed for tests: a refused connection is retried with backoff, then dead-lettered
SET broadcast_engine.allow_insecure_transport = on;
SET broadcast_engine.max_attempts = 2;
SET broadcast_engine.retry_base = 0;
SELECT broadcast.retry_dead_letters('snd', 'b1');
SELECT failed_count FROM broadcast.broadcasts WHERE workspace_id = 'snd' AND broadcast_id = 'b1';
CALL broadcast.send_queue(10);
SELECT email, attempts, last_error ~ '^gave up after 2 attempts: Couldn''t connect to server' AS gave_up
  FROM broadcast.dead_letters WHERE workspace_id = 'snd' ORDER BY email;
SELECT count(*) AS failed_history FROM broadcast.message_history WHERE workspace_id = 'snd' AND status = 'failed';

-- a paused broadcast's rows are not claimed
SELECT broadcast.retry_dead_letters('snd', 'b1');
SELECT broadcast.pause_broadcast('snd', 'b1');
CALL broadcast.send_queue(2);
SELECT status, count(*), max(attempts) FROM broadcast.email_queue WHERE workspace_id = 'snd' GROUP BY 1;
SELECT broadcast.cancel_broadcast('snd', 'b1') AS dropped;
SELECT broadcast.retry_dead_letters('snd', 'b1');

-- both procedures commit as they go
BEGIN;
CALL broadcast.send_queue(1);
ROLLBACK;

SELECT broadcast.drop_workspace('snd');
