-- Scheduling and the broadcast state machine: allowed moves and refused ones.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

CREATE SCHEMA t;
CREATE FUNCTION t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || coalesce(nullif(' / ' || det, ' / '), '');
END
$$;
CREATE FUNCTION t.show(b text) RETURNS TABLE (status text, paused_from text, task_status text, task_phase text)
LANGUAGE sql AS $$
	SELECT x.status, x.paused_from, k.status, k.phase
	  FROM broadcast.broadcasts x
	  LEFT JOIN broadcast.tasks k USING (workspace_id, broadcast_id)
	 WHERE x.workspace_id = 'st' AND x.broadcast_id = b
$$;

SELECT broadcast.create_workspace('st', 'States', 'America/New_York', '{"default_from_email": "news@st.test"}');
SELECT broadcast.create_list('st', 'l', 'L');
SELECT broadcast.create_template('st', 'a', 'A', '<p>a</p>');
SELECT broadcast.create_template('st', 'b', 'B', '<p>b</p>');
SELECT broadcast.create_integration('st', 'smtp', 'smtp', '{"host": "localhost"}');
SELECT broadcast.create_broadcast('st', 'plain', 'Plain', ARRAY['l'], 'smtp', 'a');
SELECT broadcast.create_broadcast('st', 'ab', 'AB', ARRAY['l'], 'smtp',
	variations => ARRAY['b', 'a'], ab_sample_percent => 10);

-- a draft cannot be paused, resumed, cancelled, or get a winner
SELECT t.err($$ SELECT broadcast.pause_broadcast('st', 'plain') $$);
SELECT t.err($$ SELECT broadcast.resume_broadcast('st', 'plain') $$);
SELECT t.err($$ SELECT broadcast.cancel_broadcast('st', 'plain') $$);
SELECT t.err($$ SELECT broadcast.select_winner('st', 'plain', 'a') $$);
SELECT t.err($$ SELECT broadcast.select_winner('st', 'ab', 'a') $$);
SELECT t.err($$ SELECT broadcast.select_winner('st', 'ab', 'zzz') $$);

-- schedule in the future: a pending task at that time, template versions pinned
SELECT broadcast.schedule_broadcast('st', 'plain', '2999-01-01 12:00:00+00');
SELECT * FROM t.show('plain');
SELECT run_at FROM broadcast.tasks WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT variation, template_id, version FROM broadcast.broadcast_variations
 WHERE workspace_id = 'st' AND broadcast_id = 'plain';
-- a new template version does not change what was pinned...
SELECT broadcast.create_template('st', 'a', 'A v2', '<p>a2</p>');
SELECT variation, template_id, version FROM broadcast.broadcast_variations
 WHERE workspace_id = 'st' AND broadcast_id = 'plain';
-- ...until the broadcast is rescheduled; rescheduling moves the same task
SELECT broadcast.schedule_broadcast('st', 'plain', '2999-06-01 12:00:00+00');
SELECT count(*) AS tasks, min(run_at) AS run_at FROM broadcast.tasks WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT variation, template_id, version FROM broadcast.broadcast_variations
 WHERE workspace_id = 'st' AND broadcast_id = 'plain';

-- local time in a named zone, across a DST change (New York is UTC-5 in winter, UTC-4 in summer)
SELECT broadcast.schedule_broadcast('st', 'plain', '2999-01-15 09:00'::timestamp, 'America/New_York');
SELECT send_at, local_send_at, send_timezone, recipient_timezone FROM broadcast.broadcasts
 WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT broadcast.schedule_broadcast('st', 'plain', '2999-07-15 09:00'::timestamp, 'America/New_York');
SELECT send_at FROM broadcast.broadcasts WHERE workspace_id = 'st' AND broadcast_id = 'plain';
-- per-recipient time zones: the task starts now so rows can wait for each zone's local time
SELECT broadcast.schedule_broadcast('st', 'plain', '2999-07-15 09:00'::timestamp, 'America/New_York', true);
SELECT recipient_timezone FROM broadcast.broadcasts WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT run_at <= now() AS task_due_now FROM broadcast.tasks WHERE workspace_id = 'st' AND broadcast_id = 'plain';

-- pause, resume
SELECT broadcast.pause_broadcast('st', 'plain');
SELECT * FROM t.show('plain');
SELECT t.err($$ SELECT broadcast.pause_broadcast('st', 'plain') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('st', 'plain') $$);
SELECT broadcast.update_broadcast('st', 'plain', name => 'Renamed while paused');
SELECT broadcast.resume_broadcast('st', 'plain');
SELECT * FROM t.show('plain');
SELECT t.err($$ SELECT broadcast.resume_broadcast('st', 'plain') $$);

-- sending states: pretend the orchestrator moved things along
UPDATE broadcast.broadcasts SET status = 'processing' WHERE workspace_id = 'st' AND broadcast_id = 'plain';
UPDATE broadcast.tasks SET status = 'running' WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT t.err($$ SELECT broadcast.update_broadcast('st', 'plain', name => 'x') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('st', 'plain') $$);
SELECT broadcast.pause_broadcast('st', 'plain');
-- content cannot change once sending started, even while paused
SELECT t.err($$ SELECT broadcast.update_broadcast('st', 'plain', template_id => 'b') $$);
SELECT broadcast.resume_broadcast('st', 'plain');
SELECT * FROM t.show('plain');

-- cancel drops pending queue rows, keeps history, ends the task
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
SELECT 'st', 'plain', 'u' || i || '@example.com', 'smtp', 'l', gen_random_uuid() FROM generate_series(1, 5) i;
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, status, sent_at)
VALUES ('st', gen_random_uuid(), 'plain', 'old@example.com', 'sent', now());
SELECT broadcast.cancel_broadcast('st', 'plain') AS dropped_rows;
SELECT * FROM t.show('plain');
SELECT count(*) AS queue_rows FROM broadcast.email_queue WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT count(*) AS history_rows FROM broadcast.message_history WHERE workspace_id = 'st' AND broadcast_id = 'plain';
SELECT t.err($$ SELECT broadcast.cancel_broadcast('st', 'plain') $$);
SELECT t.err($$ SELECT broadcast.resume_broadcast('st', 'plain') $$);
SELECT t.err($$ SELECT broadcast.schedule_broadcast('st', 'plain') $$);

-- A/B: a winner can be chosen only among the variations, while testing
SELECT broadcast.schedule_broadcast('st', 'ab') <= now() AS sends_now;
SELECT variation, template_id, version FROM broadcast.broadcast_variations
 WHERE workspace_id = 'st' AND broadcast_id = 'ab' ORDER BY 1;
SELECT t.err($$ SELECT broadcast.select_winner('st', 'ab', 'a') $$);
UPDATE broadcast.broadcasts SET status = 'testing' WHERE workspace_id = 'st' AND broadcast_id = 'ab';
SELECT t.err($$ SELECT broadcast.select_winner('st', 'ab', 'c') $$);
SELECT broadcast.select_winner('st', 'ab', 'a');
SELECT status, winner_template_id, winner_selected_at IS NOT NULL AS stamped FROM broadcast.broadcasts
 WHERE workspace_id = 'st' AND broadcast_id = 'ab';
SELECT t.err($$ SELECT broadcast.select_winner('st', 'ab', 'b') $$);

-- a completed broadcast cannot be cancelled or paused
UPDATE broadcast.broadcasts SET status = 'completed' WHERE workspace_id = 'st' AND broadcast_id = 'ab';
SELECT t.err($$ SELECT broadcast.cancel_broadcast('st', 'ab') $$);
SELECT t.err($$ SELECT broadcast.pause_broadcast('st', 'ab') $$);

SELECT broadcast.drop_workspace('st');
DROP SCHEMA t CASCADE;
