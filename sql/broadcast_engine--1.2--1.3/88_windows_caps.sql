/*
 * 88_windows_caps: sending windows, hourly and daily caps, warm-up
 * (issue 17, "Sending windows, caps and warm-up").
 *
 * Caps.  An integration (a workspace's pair) may have an hourly cap, a daily
 * cap and a warm-up schedule whose limit for the day grows from "start" by
 * "factor" a day up to "ceiling".  Hours and days are those of the
 * workspace's time zone, computed here from now().  What was claimed per
 * pair and period is counted in send_counts.  The sender reserves in the
 * transaction of its claim: _cap_reserve locks the pair's counter rows (day
 * then hour, always in that order), grants no more than what the caps have
 * left, and adds what it grants; the claim takes no more rows than granted
 * and gives back what it did not find; the record of the batch gives back
 * what was not sent.  Two senders serving one pair wait for each other on
 * the counter rows, so they cannot both take the last of a cap, and a
 * restart keeps the counts.  A sender that dies with a batch in flight
 * never gives its reservation back: a cap may be under-used, never exceeded.
 *
 * Windows.  A broadcast may have a sending window: from-to hours on some
 * days of the week, in the workspace's or each recipient's time zone.  The
 * claim moves due rows that are outside their window to the window's next
 * opening (next_attempt_at), without spending an attempt; they come due by
 * themselves then.  Mail over a cap is left in the queue unclaimed, and the
 * sender holds the pair until the period ends.
 *
 * broadcast.sending_caps and two columns of broadcast.progress (waiting_for,
 * waiting_until) say what mail waits for and until when.
 */

ALTER TABLE broadcast.integrations
	ADD COLUMN hourly_cap integer CHECK (hourly_cap BETWEEN 1 AND 100000000),
	ADD COLUMN daily_cap integer CHECK (daily_cap BETWEEN 1 AND 1000000000),
	ADD COLUMN warmup jsonb CHECK (jsonb_typeof(warmup) = 'object');
COMMENT ON COLUMN broadcast.integrations.hourly_cap IS
	'At most this many messages per hour of the workspace''s time zone (set_integration_caps)';
COMMENT ON COLUMN broadcast.integrations.daily_cap IS
	'At most this many messages per day of the workspace''s time zone (set_integration_caps)';
COMMENT ON COLUMN broadcast.integrations.warmup IS
	'Warm-up schedule {"start", "factor", "ceiling", "started_on"}: the daily limit grows by factor a day';

ALTER TABLE broadcast.broadcasts
	ADD COLUMN send_window jsonb CHECK (jsonb_typeof(send_window) = 'object');
COMMENT ON COLUMN broadcast.broadcasts.send_window IS
	'Sending window {"from", "to", "days", "zone"} (set_sending_window); NULL: any time';

/* messages claimed per pair and period (an hour or a day of the workspace's zone) */
CREATE TABLE broadcast.send_counts (
	workspace_id	text NOT NULL,
	integration_id	text NOT NULL,
	period			text NOT NULL CHECK (period IN ('day', 'hour')),
	starts_at		timestamptz NOT NULL,
	sent			integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
	PRIMARY KEY (workspace_id, integration_id, period, starts_at),
	FOREIGN KEY (workspace_id, integration_id) REFERENCES broadcast.integrations ON DELETE CASCADE
);
COMMENT ON TABLE broadcast.send_counts IS
	'Messages claimed per integration and hour or day, against its caps; kept 8 days';
ALTER TABLE broadcast.send_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.send_counts
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.send_counts TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.send_counts TO broadcast_admin;
/* a restored dump keeps the counts: the caps hold across it too */
SELECT pg_catalog.pg_extension_config_dump('broadcast.send_counts', '');

/* ---- caps ---- */

/* the warm-up schedule, checked and normalised; NULL stays NULL */
CREATE FUNCTION broadcast._check_warmup(w jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	v_start numeric;
	v_factor numeric;
	v_ceiling numeric;
	v_on date;
BEGIN
	IF w IS NULL THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(w) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'warmup must be a JSON object',
			HINT = 'Pass {"start": 500, "factor": 2, "ceiling": 100000, "started_on": "2026-12-01"}.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(w) k
	 WHERE k NOT IN ('start', 'factor', 'ceiling', 'started_on') ORDER BY 1 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown warmup setting %s', quote_literal(bad)),
			HINT = 'The settings are start, factor, ceiling and started_on.';
	END IF;
	IF jsonb_typeof(w->'start') IS DISTINCT FROM 'number'
	   OR jsonb_typeof(w->'ceiling') IS DISTINCT FROM 'number'
	   OR jsonb_typeof(coalesce(w->'factor', '2')) <> 'number'
	   OR jsonb_typeof(w->'started_on') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'warmup needs numbers start and ceiling, a date started_on, and optionally a number factor',
			HINT = 'Pass {"start": 500, "factor": 2, "ceiling": 100000, "started_on": "2026-12-01"}.';
	END IF;
	v_start := (w->>'start')::numeric;
	v_factor := coalesce((w->>'factor')::numeric, 2);
	v_ceiling := (w->>'ceiling')::numeric;
	IF v_start <> trunc(v_start) OR v_start NOT BETWEEN 1 AND 10000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup start must be a whole number between 1 and 10000000, got %s', w->>'start');
	END IF;
	IF v_factor NOT BETWEEN 1 AND 10 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup factor must be between 1 and 10, got %s', w->>'factor');
	END IF;
	IF v_ceiling <> trunc(v_ceiling) OR v_ceiling NOT BETWEEN v_start AND 1000000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup ceiling must be a whole number between start (%s) and 1000000000, got %s',
							 v_start, w->>'ceiling');
	END IF;
	IF (w->>'started_on') ~ '^\d{4}-\d{2}-\d{2}$' THEN
		BEGIN
			v_on := (w->>'started_on')::date;
		EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
			v_on := NULL;
		END;
	END IF;
	IF v_on IS NULL OR v_on NOT BETWEEN date '2000-01-01' AND current_date + 3650 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup started_on must be a date (YYYY-MM-DD) between 2000-01-01 and ten years from now, got %s',
							 w->>'started_on');
	END IF;
	RETURN jsonb_build_object('start', v_start, 'factor', v_factor, 'ceiling', v_ceiling,
							  'started_on', to_char(v_on, 'YYYY-MM-DD'));
END
$$;

/*
 * The day's warm-up limit: start on started_on (and before it), multiplied
 * by factor each day after, up to ceiling.  NULL without a schedule.
 */
CREATE FUNCTION broadcast._warmup_limit(w jsonb, today date)
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT least((w->>'ceiling')::float8,
				 floor((w->>'start')::float8
					   * power((w->>'factor')::float8,
							   least(greatest(today - (w->>'started_on')::date, 0), 400))))::bigint
$$;

/* an administrator's direct writes pass the same checks, and are normalised */
CREATE FUNCTION broadcast._warmup_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.warmup := broadcast._check_warmup(NEW.warmup);
	RETURN NEW;
END
$$;
CREATE TRIGGER integrations_warmup_check BEFORE INSERT OR UPDATE OF warmup ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._warmup_check();

/*
 * A pair's caps as they stand now: the limits, the periods (hour and day of
 * the workspace's time zone) and what was claimed in them.  No row when the
 * pair has no cap.  Readable by workspace roles under row level security.
 */
CREATE FUNCTION broadcast._cap_state(p_workspace_id text, p_integration_id text,
	OUT hourly_cap integer, OUT daily_limit bigint, OUT daily_reason text,
	OUT hour_start timestamptz, OUT hour_end timestamptz,
	OUT day_start timestamptz, OUT day_end timestamptz,
	OUT sent_this_hour integer, OUT sent_today integer)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT i.hourly_cap, d.lim, d.reason, p.hs, p.he, p.ds, p.de,
		   coalesce((SELECT c.sent FROM broadcast.send_counts c
					  WHERE c.workspace_id = i.workspace_id AND c.integration_id = i.integration_id
						AND c.period = 'hour' AND c.starts_at = p.hs), 0),
		   coalesce((SELECT c.sent FROM broadcast.send_counts c
					  WHERE c.workspace_id = i.workspace_id AND c.integration_id = i.integration_id
						AND c.period = 'day' AND c.starts_at = p.ds), 0)
	  FROM broadcast.integrations i
	  JOIN broadcast.workspaces w ON w.workspace_id = i.workspace_id
	 CROSS JOIN LATERAL (SELECT timezone(w.timezone, now()) AS t) l
	 CROSS JOIN LATERAL (
		SELECT timezone(w.timezone, date_trunc('hour', l.t)) AS hs,
			   timezone(w.timezone, date_trunc('hour', l.t) + interval '1 hour') AS he,
			   timezone(w.timezone, date_trunc('day', l.t)) AS ds,
			   timezone(w.timezone, date_trunc('day', l.t) + interval '1 day') AS de) p
	 CROSS JOIN LATERAL (
		SELECT broadcast._warmup_limit(i.warmup, l.t::date) AS wl) wu
	 CROSS JOIN LATERAL (
		SELECT CASE WHEN wu.wl IS NOT NULL AND (i.daily_cap IS NULL OR wu.wl < i.daily_cap)
					THEN wu.wl ELSE i.daily_cap END AS lim,
			   CASE WHEN wu.wl IS NOT NULL AND (i.daily_cap IS NULL OR wu.wl < i.daily_cap)
					THEN 'warm-up' WHEN i.daily_cap IS NOT NULL THEN 'daily cap' END AS reason) d
	 WHERE i.workspace_id = p_workspace_id AND i.integration_id = p_integration_id
	   AND (i.hourly_cap IS NOT NULL OR i.daily_cap IS NOT NULL OR i.warmup IS NOT NULL)
$$;

/*
 * For the sender, in its claim transaction: up to want messages for the
 * pair, as many as its caps have left, added to the counts at once (the
 * claim gives back what it does not use, _cap_add).  granted is want and
 * the rest NULL when the pair has no cap.  When nothing is left, reason
 * says which cap and until when.
 */
CREATE FUNCTION broadcast._cap_reserve(p_workspace_id text, p_integration_id text, want integer,
	OUT granted integer, OUT reason text, OUT wait_until timestamptz,
	OUT hour_start timestamptz, OUT day_start timestamptz)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s record;
	n integer;
	h integer;
	d integer;
	left_h bigint;
	left_d bigint;
BEGIN
	granted := want;
	SELECT * INTO s FROM broadcast._cap_state(p_workspace_id, p_integration_id);
	IF NOT FOUND OR want <= 0 THEN
		RETURN;
	END IF;
	hour_start := s.hour_start;
	day_start := s.day_start;
	INSERT INTO broadcast.send_counts AS c (workspace_id, integration_id, period, starts_at)
	VALUES (p_workspace_id, p_integration_id, 'day', s.day_start),
		   (p_workspace_id, p_integration_id, 'hour', s.hour_start)
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		/* a new period: what is older than a week goes */
		DELETE FROM broadcast.send_counts c
		 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
		   AND c.starts_at < now() - interval '8 days';
	END IF;
	/* day before hour, in every transaction that takes both */
	SELECT c.sent INTO d FROM broadcast.send_counts c
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'day' AND c.starts_at = s.day_start FOR UPDATE;
	SELECT c.sent INTO h FROM broadcast.send_counts c
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'hour' AND c.starts_at = s.hour_start FOR UPDATE;
	left_h := CASE WHEN s.hourly_cap IS NULL THEN want ELSE greatest(s.hourly_cap - h, 0) END;
	left_d := CASE WHEN s.daily_limit IS NULL THEN want ELSE greatest(s.daily_limit - d, 0) END;
	granted := least(want, left_h, left_d);
	IF granted = 0 THEN
		IF left_d = 0 THEN
			reason := s.daily_reason;
			wait_until := s.day_end;
		ELSE
			reason := 'hourly cap';
			wait_until := s.hour_end;
		END IF;
		RETURN;
	END IF;
	UPDATE broadcast.send_counts c SET sent = c.sent + granted
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND ((c.period = 'day' AND c.starts_at = s.day_start)
			OR (c.period = 'hour' AND c.starts_at = s.hour_start));
END
$$;

/* moves a reservation by n (negative: gives back), in the periods it was made in */
CREATE FUNCTION broadcast._cap_add(p_workspace_id text, p_integration_id text,
	p_hour_start timestamptz, p_day_start timestamptz, n integer)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	/* the day row first: the order _cap_reserve locks them in */
	UPDATE broadcast.send_counts c SET sent = greatest(c.sent + n, 0)
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'day' AND c.starts_at = p_day_start;
	UPDATE broadcast.send_counts c SET sent = greatest(c.sent + n, 0)
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'hour' AND c.starts_at = p_hour_start;
$$;

REVOKE ALL ON FUNCTION broadcast._cap_reserve(text, text, integer),
	broadcast._cap_add(text, text, timestamptz, timestamptz, integer) FROM PUBLIC;

/*
 * Sets (or, with NULL, removes) an integration's hourly cap, daily cap and
 * warm-up schedule, all three at once.
 */
CREATE FUNCTION broadcast.set_integration_caps(
	workspace_id text,
	integration_id text,
	hourly_cap integer DEFAULT NULL,
	daily_cap integer DEFAULT NULL,
	warmup jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	w jsonb;
BEGIN
	PERFORM broadcast._authorize_caller(set_integration_caps.workspace_id);
	PERFORM broadcast._check_id('integration', set_integration_caps.integration_id);
	IF set_integration_caps.hourly_cap IS NOT NULL
	   AND set_integration_caps.hourly_cap NOT BETWEEN 1 AND 100000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('hourly_cap must be between 1 and 100000000, got %s', set_integration_caps.hourly_cap),
			HINT = 'Pass NULL for no hourly cap.';
	END IF;
	IF set_integration_caps.daily_cap IS NOT NULL
	   AND set_integration_caps.daily_cap NOT BETWEEN 1 AND 1000000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('daily_cap must be between 1 and 1000000000, got %s', set_integration_caps.daily_cap),
			HINT = 'Pass NULL for no daily cap.';
	END IF;
	w := broadcast._check_warmup(set_integration_caps.warmup);
	UPDATE broadcast.integrations i
	   SET hourly_cap = set_integration_caps.hourly_cap, daily_cap = set_integration_caps.daily_cap,
		   warmup = w, updated_at = now()
	 WHERE i.workspace_id = set_integration_caps.workspace_id
	   AND i.integration_id = set_integration_caps.integration_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(set_integration_caps.integration_id),
							 quote_literal(set_integration_caps.workspace_id));
	END IF;
	/* a raised cap lets waiting mail go now */
	PERFORM broadcast._wake_senders();
	RETURN set_integration_caps.integration_id;
END
$$;
REVOKE ALL ON FUNCTION broadcast.set_integration_caps(text, text, integer, integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.set_integration_caps(text, text, integer, integer, jsonb)
	TO broadcast_user, broadcast_admin;
COMMENT ON FUNCTION broadcast.set_integration_caps(text, text, integer, integer, jsonb) IS
	'Sets an integration''s hourly cap, daily cap and warm-up schedule (NULL: none)';

/* per capped integration: its caps, what went this hour and today, what waits and until when */
CREATE VIEW broadcast.sending_caps WITH (security_invoker = true) AS
SELECT i.workspace_id, i.integration_id, s.hourly_cap, s.sent_this_hour,
	   i.daily_cap, broadcast._warmup_limit(i.warmup, timezone(w.timezone, now())::date) AS warmup_today,
	   s.sent_today,
	   CASE WHEN s.daily_limit IS NOT NULL AND s.sent_today >= s.daily_limit THEN s.daily_reason
			WHEN s.sent_this_hour >= s.hourly_cap THEN 'hourly cap' END AS waiting_for,
	   CASE WHEN s.daily_limit IS NOT NULL AND s.sent_today >= s.daily_limit THEN s.day_end
			WHEN s.sent_this_hour >= s.hourly_cap THEN s.hour_end END AS waiting_until
  FROM broadcast.integrations i
  JOIN broadcast.workspaces w ON w.workspace_id = i.workspace_id
 CROSS JOIN LATERAL broadcast._cap_state(i.workspace_id, i.integration_id) s;
GRANT SELECT ON broadcast.sending_caps TO broadcast_user, broadcast_admin;
COMMENT ON VIEW broadcast.sending_caps IS
	'Integrations with caps or warm-up: the limits, what was sent this hour and today, and what mail waits for';

/*
 * rate_limits(), as before, with two columns at the end: for a workspace
 * pair's bucket, what its caps hold its mail back for and until when
 * (sending_caps).  The buckets are read from shared memory by
 * _rate_buckets(), the C function rate_limits() was until 1.3.
 */
CREATE FUNCTION broadcast._rate_buckets(
	OUT scope text, OUT workspace_id text, OUT integration_id text,
	OUT rate_per_second float8, OUT tokens float8, OUT paused_until timestamptz,
	OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_rate_limits';
REVOKE ALL ON FUNCTION broadcast._rate_buckets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast._rate_buckets() TO broadcast_admin;

DROP FUNCTION broadcast.rate_limits();
CREATE FUNCTION broadcast.rate_limits(
	OUT scope text, OUT workspace_id text, OUT integration_id text,
	OUT rate_per_second float8, OUT tokens float8, OUT paused_until timestamptz,
	OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint,
	OUT waiting_for text, OUT waiting_until timestamptz)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT r.scope, r.workspace_id, r.integration_id, r.rate_per_second, r.tokens, r.paused_until,
		   r.breaker, r.consecutive_failures, r.granted, r.throttled, c.waiting_for, c.waiting_until
	  FROM broadcast._rate_buckets() r
	  LEFT JOIN broadcast.sending_caps c
			 ON r.scope = 'workspace' AND c.workspace_id = r.workspace_id
			AND c.integration_id = r.integration_id
$$;
REVOKE ALL ON FUNCTION broadcast.rate_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.rate_limits() TO broadcast_admin;
COMMENT ON FUNCTION broadcast.rate_limits() IS
	'Token buckets, Retry-After pauses and circuit breakers (shared memory), and what a pair''s caps hold its mail back for';

/* ---- windows ---- */

/* a sending window, checked and normalised; NULL stays NULL */
CREATE FUNCTION broadcast._check_send_window(w jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	days text[];
	v_from text;
	v_to text;
	v_zone text;
BEGIN
	IF w IS NULL THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(w) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'send_window must be a JSON object',
			HINT = 'Pass {"from": "08:00", "to": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"], "zone": "recipient"}.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(w) k
	 WHERE k NOT IN ('from', 'to', 'days', 'zone') ORDER BY 1 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown send_window setting %s', quote_literal(bad)),
			HINT = 'The settings are from, to, days and zone.';
	END IF;
	v_from := w->>'from';
	v_to := w->>'to';
	IF jsonb_typeof(w->'from') IS DISTINCT FROM 'string' OR v_from !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "from" must be a time HH:MM from 00:00 to 23:59, got %s', coalesce(w->>'from', 'NULL'));
	END IF;
	IF jsonb_typeof(w->'to') IS DISTINCT FROM 'string'
	   OR (v_to !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' AND v_to <> '24:00') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "to" must be a time HH:MM from 00:01 to 24:00, got %s', coalesce(w->>'to', 'NULL'));
	END IF;
	IF v_from::time >= v_to::time THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "from" (%s) must come before "to" (%s)', v_from, v_to),
			HINT = 'A window lies within one day; for a window across midnight, use "from": "00:00" and "to": "24:00" on the days it covers, or two broadcasts.';
	END IF;
	IF w ? 'days' THEN
		IF jsonb_typeof(w->'days') <> 'array' OR jsonb_array_length(w->'days') = 0
		   OR EXISTS (SELECT 1 FROM jsonb_array_elements(w->'days') e
					   WHERE jsonb_typeof(e) <> 'string'
						  OR e #>> '{}' NOT IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('send_window "days" must be a non-empty array of mon, tue, wed, thu, fri, sat, sun, got %s',
								 w->'days'),
				HINT = 'Leave "days" out for every day of the week.';
		END IF;
		days := ARRAY(SELECT d FROM unnest(ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']) WITH ORDINALITY AS x(d, n)
					   WHERE w->'days' ? d ORDER BY n);
	ELSE
		days := ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
	END IF;
	v_zone := coalesce(w->>'zone', 'workspace');
	IF (w ? 'zone' AND jsonb_typeof(w->'zone') <> 'string') OR v_zone NOT IN ('workspace', 'recipient') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "zone" must be "workspace" or "recipient", got %s', w->'zone'),
			HINT = '"recipient" uses each contact''s time zone, and the workspace''s for contacts without one.';
	END IF;
	RETURN jsonb_build_object('from', v_from, 'to', v_to, 'days', to_jsonb(days), 'zone', v_zone);
END
$$;

/* an administrator's direct writes pass the same checks, and are normalised */
CREATE FUNCTION broadcast._send_window_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.send_window := broadcast._check_send_window(NEW.send_window);
	RETURN NEW;
END
$$;
CREATE TRIGGER broadcasts_send_window_check BEFORE INSERT OR UPDATE OF send_window ON broadcast.broadcasts
	FOR EACH ROW EXECUTE FUNCTION broadcast._send_window_check();

/*
 * NULL when the (normalised) window w is open at time at in zone tz;
 * otherwise when it opens next.
 */
CREATE FUNCTION broadcast._window_opens(w jsonb, tz text, at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN w->'days' ? to_char(l.t, 'dy') AND l.t::time >= (w->>'from')::time
			 AND (w->>'to' = '24:00' OR l.t::time < (w->>'to')::time) THEN NULL
		ELSE (SELECT timezone(tz, min(d + (w->>'from')::time))
				FROM generate_series(date_trunc('day', l.t), date_trunc('day', l.t) + interval '7 days',
									 interval '1 day') d
			   WHERE w->'days' ? to_char(d, 'dy') AND d + (w->>'from')::time > l.t) END
	  FROM (SELECT timezone(tz, at) AS t) l
$$;

/*
 * For the sender's claim: NULL when a queued message of a broadcast with a
 * window may go now, otherwise when its window opens (in its contact's or
 * the workspace's time zone).
 */
CREATE FUNCTION broadcast._window_wait(p_workspace_id text, p_broadcast_id text, p_email text)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT broadcast._window_opens(b.send_window,
		   CASE WHEN b.send_window->>'zone' = 'recipient'
				THEN coalesce((SELECT c.timezone FROM broadcast.contacts c
								WHERE c.workspace_id = p_workspace_id AND c.email = p_email), w.timezone)
				ELSE w.timezone END,
		   now())
	  FROM broadcast.broadcasts b
	  JOIN broadcast.workspaces w ON w.workspace_id = b.workspace_id
	 WHERE b.workspace_id = p_workspace_id AND b.broadcast_id = p_broadcast_id
$$;
REVOKE ALL ON FUNCTION broadcast._window_wait(text, text, text) FROM PUBLIC;

/*
 * Sets (or, with NULL, removes) a broadcast's sending window.  Queued mail
 * that waits is made due again, to be judged against the new window.
 */
CREATE FUNCTION broadcast.set_sending_window(
	workspace_id text,
	broadcast_id text,
	send_window jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	w jsonb;
BEGIN
	PERFORM broadcast._authorize_caller(set_sending_window.workspace_id);
	b := broadcast._get_broadcast(set_sending_window.workspace_id, set_sending_window.broadcast_id);
	IF b.status IN ('completed', 'cancelled', 'failed') THEN
		PERFORM broadcast._state_error(b, 'change the sending window of',
			'draft, scheduled, processing, testing, test_completed, winner_selected or paused');
	END IF;
	w := broadcast._check_send_window(set_sending_window.send_window);
	UPDATE broadcast.broadcasts x SET send_window = w, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.email_queue q SET next_attempt_at = now()
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
	   AND q.status = 'pending' AND q.lease_until IS NULL AND q.next_attempt_at > now();
	IF FOUND THEN
		PERFORM broadcast._wake_senders();
	END IF;
	RETURN b.broadcast_id;
END
$$;
REVOKE ALL ON FUNCTION broadcast.set_sending_window(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.set_sending_window(text, text, jsonb) TO broadcast_user, broadcast_admin;
COMMENT ON FUNCTION broadcast.set_sending_window(text, text, jsonb) IS
	'Sets a broadcast''s sending window {"from", "to", "days", "zone"} (NULL: any time)';

/*
 * broadcast.progress, as in 1.0, and two columns at the end: what the
 * broadcast's mail waits for ('window', 'hourly cap', 'daily cap',
 * 'warm-up'; NULL when it is not waiting on one of these) and until when.
 */
CREATE OR REPLACE VIEW broadcast.progress WITH (security_invoker = true) AS
SELECT b.workspace_id, b.broadcast_id, b.name, b.status, t.phase,
	   b.total_recipients AS total, b.enqueued_count AS enqueued,
	   b.sent_count AS sent, b.failed_count AS failed,
	   CASE WHEN b.total_recipients > 0
			THEN round(100.0 * (b.sent_count + b.failed_count) / b.total_recipients, 1) END AS percent,
	   CASE WHEN b.started_at IS NOT NULL AND now() > b.started_at
			THEN round((b.sent_count + b.failed_count)
					   / extract(epoch FROM now() - b.started_at)::numeric, 1) END AS rate_per_second,
	   CASE WHEN b.sent_count + b.failed_count > 0 AND now() > b.started_at
			THEN make_interval(secs => greatest(b.total_recipients - b.sent_count - b.failed_count, 0)
						 * extract(epoch FROM now() - b.started_at)::float8
						 / (b.sent_count + b.failed_count)) END AS eta,
	   b.started_at, b.send_at, t.last_error,
	   wt.waiting_for, wt.waiting_until
  FROM broadcast.broadcasts b
  LEFT JOIN broadcast.tasks t
		 ON t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
		AND t.status IN ('pending', 'running', 'paused')
  LEFT JOIN LATERAL (
		SELECT CASE WHEN cs.daily_limit IS NOT NULL AND cs.sent_today >= cs.daily_limit THEN cs.daily_reason
					WHEN cs.sent_this_hour >= cs.hourly_cap THEN 'hourly cap' END AS why,
			   CASE WHEN cs.daily_limit IS NOT NULL AND cs.sent_today >= cs.daily_limit THEN cs.day_end
					WHEN cs.sent_this_hour >= cs.hourly_cap THEN cs.hour_end END AS until
		  FROM broadcast._cap_state(b.workspace_id, b.integration_id) cs) c ON b.status <> 'paused'
  LEFT JOIN LATERAL (
		SELECT min(q.next_attempt_at) AS next_at FROM broadcast.email_queue q
		 WHERE q.workspace_id = b.workspace_id AND q.integration_id = b.integration_id
		   AND q.status IN ('pending', 'sending') AND q.broadcast_id = b.broadcast_id) qn
		 ON b.status <> 'paused'
 CROSS JOIN LATERAL (
		SELECT CASE WHEN qn.next_at IS NULL THEN NULL
					WHEN c.why IS NOT NULL THEN c.why
					WHEN b.send_window IS NOT NULL AND qn.next_at > now() THEN 'window' END AS waiting_for,
			   CASE WHEN qn.next_at IS NULL THEN NULL
					WHEN c.why IS NOT NULL THEN c.until
					WHEN b.send_window IS NOT NULL AND qn.next_at > now() THEN qn.next_at END AS waiting_until) wt
 WHERE b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused');
