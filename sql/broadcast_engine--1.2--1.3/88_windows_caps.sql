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

CREATE TRIGGER integrations_warmup_check BEFORE INSERT OR UPDATE OF warmup ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._warmup_check();

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

/* rate_limits() became an SQL function with two more columns: dropped in 08_drops.sql */

/* ---- windows ---- */

CREATE TRIGGER broadcasts_send_window_check BEFORE INSERT OR UPDATE OF send_window ON broadcast.broadcasts
	FOR EACH ROW EXECUTE FUNCTION broadcast._send_window_check();

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
