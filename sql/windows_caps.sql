-- Sending windows, hourly and daily caps, warm-up (issue 17): settings are
-- checked with bounds and normalised, the cap arithmetic of the claim, the
-- window's next opening in a time zone, and mail outside its window left
-- waiting without an attempt spent.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT broadcast.create_workspace('wc', 'Windows and caps', 'America/New_York',
	'{"default_from_email": "news@wc.test", "sending_domain": "wc.test"}');
SELECT broadcast.create_list('wc', 'l', 'L');
SELECT broadcast.subscribe('wc', 'l', ARRAY['a@example.com', 'b@example.com']);
SELECT broadcast.create_template('wc', 't', 'Hi', '<p>Hi</p>');
-- nothing listens on port 9 of the loopback address
SELECT broadcast.create_integration('wc', 'esp', 'sendgrid', '{"endpoint": "http://127.0.0.1:9"}', 'k');

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

-- caps: set, normalised (factor defaults to 2), removed with NULL
SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 10, daily_cap => 25,
	warmup => '{"start": 500, "ceiling": 100000, "started_on": "2026-01-01"}');
SELECT hourly_cap, daily_cap, warmup FROM broadcast.integrations WHERE workspace_id = 'wc';

-- bad settings are refused and change nothing
SELECT pg_temp.err(s) FROM unnest(ARRAY[
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 0)$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 100000001)$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', daily_cap => -5)$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', daily_cap => 1000000001)$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '[1]')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "ceiling": 10, "started_on": "2026-01-01", "speed": 3}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "ceiling": 10}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 0, "ceiling": 10, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 1.5, "ceiling": 10, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "factor": 11, "ceiling": 10, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "factor": 0.5, "ceiling": 10, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 50, "ceiling": 10, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "ceiling": 2000000000, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "ceiling": 10, "started_on": "today"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "ceiling": 10, "started_on": "2026-02-30"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": 5, "ceiling": 10, "started_on": "1999-12-31"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'esp', warmup => '{"start": "5", "ceiling": 10, "started_on": "2026-01-01"}')$q$,
	$q$SELECT broadcast.set_integration_caps('wc', 'nope', hourly_cap => 5)$q$,
	$q$SELECT broadcast.set_integration_caps('nows', 'esp', hourly_cap => 5)$q$]) s;
SELECT hourly_cap, daily_cap, warmup FROM broadcast.integrations WHERE workspace_id = 'wc';

-- the warm-up's daily limit: start on its first day (and before), doubling, up to the ceiling
SELECT d, broadcast._warmup_limit('{"start": 500, "factor": 2, "ceiling": 100000, "started_on": "2026-01-01"}', d::date)
  FROM unnest(ARRAY['2025-12-25', '2026-01-01', '2026-01-02', '2026-01-03', '2026-01-08', '2026-01-09', '2036-01-01']) d;
SELECT broadcast._warmup_limit(NULL, current_date) IS NULL AS no_schedule;

-- reservations: no more than the hourly cap, then the daily cap, with the period's end
SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 10, daily_cap => 25);
CREATE TEMP VIEW periods AS
SELECT timezone('America/New_York', date_trunc('hour', timezone('America/New_York', now())) + interval '1 hour') AS hour_end,
	   timezone('America/New_York', date_trunc('day', timezone('America/New_York', now())) + interval '1 day') AS day_end;
SELECT r.granted, r.reason, r.wait_until = p.hour_end AS until_next_hour
  FROM unnest(ARRAY[4, 10, 3]) w, broadcast._cap_reserve('wc', 'esp', w) r, periods p;
SELECT integration_id, hourly_cap, sent_this_hour, daily_cap, warmup_today, sent_today, waiting_for,
	   waiting_until = (SELECT hour_end FROM periods) AS until_next_hour
  FROM broadcast.sending_caps WHERE workspace_id = 'wc';
-- two more hours (each starts empty): the day's cap binds at 25
CREATE TEMP VIEW this_hour AS
SELECT timezone('America/New_York', date_trunc('hour', timezone('America/New_York', now()))) AS hour_start;
UPDATE broadcast.send_counts SET starts_at = starts_at - interval '2 hours'
 WHERE workspace_id = 'wc' AND period = 'hour' AND starts_at = (SELECT hour_start FROM this_hour);
SELECT r.granted, r.reason FROM broadcast._cap_reserve('wc', 'esp', 10) r;
UPDATE broadcast.send_counts SET starts_at = starts_at - interval '1 hour'
 WHERE workspace_id = 'wc' AND period = 'hour' AND starts_at = (SELECT hour_start FROM this_hour);
SELECT r.granted, r.reason, r.wait_until = p.day_end AS until_next_day
  FROM unnest(ARRAY[10, 1]) w, broadcast._cap_reserve('wc', 'esp', w) r, periods p;
SELECT period, sent FROM broadcast.send_counts WHERE workspace_id = 'wc' ORDER BY period, starts_at;
-- giving back: down to zero, never below
SELECT broadcast._cap_add('wc', 'esp', r.hour_start, r.day_start, -7)
  FROM (SELECT timezone('America/New_York', date_trunc('hour', timezone('America/New_York', now()))) AS hour_start,
			   timezone('America/New_York', date_trunc('day', timezone('America/New_York', now()))) AS day_start) r;
SELECT period, sent FROM broadcast.send_counts WHERE workspace_id = 'wc' ORDER BY period, starts_at;
-- a warm-up limit below the daily cap binds as 'warm-up'
SELECT broadcast.set_integration_caps('wc', 'esp', daily_cap => 1000,
	warmup => jsonb_build_object('start', 20, 'ceiling', 1000, 'started_on', timezone('America/New_York', now())::date));
SELECT r.granted, r.reason, r.wait_until = p.day_end AS until_next_day
  FROM unnest(ARRAY[5, 5]) w, broadcast._cap_reserve('wc', 'esp', w) r, periods p;
SELECT waiting_for, warmup_today, sent_today FROM broadcast.sending_caps WHERE workspace_id = 'wc';
-- no caps: everything is granted and nothing counted
SELECT broadcast.set_integration_caps('wc', 'esp');
SELECT * FROM broadcast._cap_reserve('wc', 'esp', 500);
SELECT count(*) AS capped FROM broadcast.sending_caps WHERE workspace_id = 'wc';
DELETE FROM broadcast.send_counts WHERE workspace_id = 'wc';

-- windows: checked and normalised
SELECT broadcast.create_broadcast('wc', 'b', 'B', '{l}', 'esp', 't');
SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "20:00", "days": ["fri", "mon"], "zone": "recipient"}');
SELECT send_window FROM broadcast.broadcasts WHERE workspace_id = 'wc' AND broadcast_id = 'b';
SELECT broadcast.set_sending_window('wc', 'b', '{"from": "00:00", "to": "24:00"}');
SELECT send_window FROM broadcast.broadcasts WHERE workspace_id = 'wc' AND broadcast_id = 'b';
SELECT pg_temp.err(s) FROM unnest(ARRAY[
	$q$SELECT broadcast.set_sending_window('wc', 'b', '"08:00"')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "20:00", "tz": "UTC"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"to": "20:00"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "8:00", "to": "20:00"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "24:01"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:60", "to": "20:00"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "20:00", "to": "08:00"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "08:00"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "20:00", "days": []}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "20:00", "days": ["monday"]}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "20:00", "days": "mon"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'b', '{"from": "08:00", "to": "20:00", "zone": "Europe/Paris"}')$q$,
	$q$SELECT broadcast.set_sending_window('wc', 'nope', '{"from": "08:00", "to": "20:00"}')$q$]) s;
SELECT send_window FROM broadcast.broadcasts WHERE workspace_id = 'wc' AND broadcast_id = 'b';

-- the next opening, in the zone given: 2026-12-07 is a Monday
CREATE TEMP TABLE win AS
SELECT broadcast._check_send_window('{"from": "08:00", "to": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"]}') AS w;
SELECT at, tz, broadcast._window_opens(w, tz, at::timestamptz) AS opens
  FROM win, (VALUES
	('2026-12-07 12:00+00', 'America/New_York'),	-- Monday 07:00 there: opens at 08:00
	('2026-12-07 13:00+00', 'America/New_York'),	-- 08:00 there: open
	('2026-12-08 00:59+00', 'America/New_York'),	-- Monday 19:59 there: open
	('2026-12-08 01:00+00', 'America/New_York'),	-- 20:00 there: Tuesday 08:00
	('2026-12-12 04:00+00', 'America/New_York'),	-- Friday 23:00 there: Monday 08:00
	('2026-12-07 12:00+00', 'Asia/Tokyo'),		-- Monday 21:00 there: Tuesday 08:00
	('2026-12-06 23:30+00', 'Asia/Tokyo')		-- Monday 08:30 there: open
  ) v(at, tz) ORDER BY tz, at;
SELECT broadcast._window_opens(broadcast._check_send_window('{"from": "00:00", "to": "24:00", "days": ["sun"]}'),
	'UTC', '2026-12-06 23:59:59+00') IS NULL AS open_until_midnight,
	   broadcast._window_opens(broadcast._check_send_window('{"from": "00:00", "to": "24:00", "days": ["sun"]}'),
	'UTC', '2026-12-07 00:00+00') AS next_sunday;

-- mail outside its window waits for the opening: not claimed, no attempt spent
DO $$
DECLARE
	h int := extract(hour FROM timezone('America/New_York', now()));
BEGIN
	-- a one-hour window that is not now: two hours ahead, or the first hour when that wraps
	PERFORM broadcast.set_sending_window('wc', 'b', jsonb_build_object(
		'from', lpad(((h + 2) % 24)::text, 2, '0') || ':00',
		'to', CASE WHEN (h + 2) % 24 = 23 THEN '24:00' ELSE lpad(((h + 3) % 24)::text, 2, '0') || ':00' END));
END
$$;
SELECT broadcast.schedule_broadcast('wc', 'b') IS NOT NULL;
CALL broadcast.run_tasks(5);
CALL broadcast.send_queue(5);
SELECT email, q.status, attempts, lease_until IS NULL AS not_leased,
	   next_attempt_at = broadcast._window_opens(b.send_window, 'America/New_York', now()) AS at_opening,
	   next_attempt_at > now() AS waits
  FROM broadcast.email_queue q JOIN broadcast.broadcasts b USING (workspace_id, broadcast_id)
 WHERE q.workspace_id = 'wc' ORDER BY email;
SELECT count(*) AS history FROM broadcast.message_history WHERE workspace_id = 'wc';
SELECT broadcast_id, status, waiting_for,
	   waiting_until = (SELECT min(next_attempt_at) FROM broadcast.email_queue WHERE workspace_id = 'wc') AS until_opening
  FROM broadcast.progress WHERE workspace_id = 'wc';
-- a new window open now: the waiting mail is due again at once
SELECT broadcast.set_sending_window('wc', 'b', '{"from": "00:00", "to": "24:00"}');
SELECT email, attempts, next_attempt_at <= now() AS due FROM broadcast.email_queue WHERE workspace_id = 'wc' ORDER BY email;
SELECT waiting_for FROM broadcast.progress WHERE workspace_id = 'wc';

-- over a cap: progress says which cap and until when
SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 1);
SELECT (broadcast._cap_reserve('wc', 'esp', 1)).granted;
SELECT broadcast_id, waiting_for, waiting_until = (SELECT hour_end FROM periods) AS until_next_hour
  FROM broadcast.progress WHERE workspace_id = 'wc';
CALL broadcast.send_queue(2);
SELECT email, attempts, lease_until IS NULL AS not_leased FROM broadcast.email_queue WHERE workspace_id = 'wc' ORDER BY email;
SELECT broadcast.cancel_broadcast('wc', 'b');
-- an administrator's direct writes are checked and normalised too
SELECT pg_temp.err($q$UPDATE broadcast.integrations SET warmup = '{"start": 0, "ceiling": 5, "started_on": "2026-01-01"}' WHERE workspace_id = 'wc'$q$);
SELECT pg_temp.err($q$UPDATE broadcast.broadcasts SET send_window = '{"from": "09:00"}' WHERE workspace_id = 'wc'$q$);
UPDATE broadcast.integrations SET warmup = '{"start": 5, "ceiling": 50, "started_on": "2026-01-01"}' WHERE workspace_id = 'wc';
SELECT warmup FROM broadcast.integrations WHERE workspace_id = 'wc';
UPDATE broadcast.integrations SET warmup = NULL WHERE workspace_id = 'wc';

-- a finished broadcast's window no longer changes
SELECT pg_temp.err($q$SELECT broadcast.set_sending_window('wc', 'b', NULL)$q$);

-- tenants: their own workspace only; they read their counts and caps, never write them
CREATE ROLE wc_tenant NOLOGIN IN ROLE broadcast_user;
CREATE ROLE wc_other NOLOGIN IN ROLE broadcast_user;
SELECT broadcast.grant_workspace('wc', 'wc_tenant');
SELECT (broadcast._cap_reserve('wc', 'esp', 1)).granted;
SET ROLE wc_other;
SELECT pg_temp.err($q$SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 5)$q$);
SELECT pg_temp.err($q$SELECT broadcast.set_sending_window('wc', 'b', NULL)$q$);
SELECT count(*) AS others_counts FROM broadcast.send_counts;
SELECT count(*) AS others_caps FROM broadcast.sending_caps;
SET ROLE wc_tenant;
SELECT broadcast.set_integration_caps('wc', 'esp', hourly_cap => 5);
SELECT integration_id, hourly_cap, sent_this_hour FROM broadcast.sending_caps;
SELECT pg_temp.err($q$UPDATE broadcast.send_counts SET sent = 0$q$);
SELECT pg_temp.err($q$SELECT broadcast._cap_reserve('wc', 'esp', 1)$q$);
RESET ROLE;
SELECT broadcast.revoke_workspace('wc', 'wc_tenant');
DROP ROLE wc_tenant;
DROP ROLE wc_other;
