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

GRANT SELECT ON TABLE broadcast.progress TO broadcast_user;
GRANT SELECT ON TABLE broadcast.progress TO broadcast_admin;
