/*
 * The /metrics scrape in Prometheus text format 0.0.4, from queue_health,
 * broadcasts, worker_status(), rate_limits() and tasks (docs/edge.md lists
 * the names).  Runs as the owner: the edge's role reads no table itself.
 */

CREATE OR REPLACE FUNCTION broadcast.edge_metrics() RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	out text := '';
BEGIN
	out := out || E'# HELP broadcast_engine_queue_depth Queued messages waiting to be sent (not in flight).\n'
			   || E'# TYPE broadcast_engine_queue_depth gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_queue_depth{workspace=%s,integration=%s} %s\n',
						broadcast._prom_label(h.workspace_id), broadcast._prom_label(h.integration_id), h.pending),
						'' ORDER BY h.workspace_id, h.integration_id)
					FROM broadcast.queue_health h), '');
	out := out || E'# HELP broadcast_engine_queue_due Queued messages due now.\n'
			   || E'# TYPE broadcast_engine_queue_due gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_queue_due{workspace=%s,integration=%s} %s\n',
						broadcast._prom_label(h.workspace_id), broadcast._prom_label(h.integration_id), h.due),
						'' ORDER BY h.workspace_id, h.integration_id)
					FROM broadcast.queue_health h), '');
	out := out || E'# HELP broadcast_engine_queue_in_flight Queued messages a sender holds right now.\n'
			   || E'# TYPE broadcast_engine_queue_in_flight gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_queue_in_flight{workspace=%s,integration=%s} %s\n',
						broadcast._prom_label(h.workspace_id), broadcast._prom_label(h.integration_id), h.in_flight),
						'' ORDER BY h.workspace_id, h.integration_id)
					FROM broadcast.queue_health h), '');
	out := out || E'# HELP broadcast_engine_dead_letters Messages that failed for good and wait in the queue.\n'
			   || E'# TYPE broadcast_engine_dead_letters gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_dead_letters{workspace=%s,integration=%s} %s\n',
						broadcast._prom_label(h.workspace_id), broadcast._prom_label(h.integration_id), h.dead),
						'' ORDER BY h.workspace_id, h.integration_id)
					FROM broadcast.queue_health h), '');
	out := out || E'# HELP broadcast_engine_messages_sent_total Messages accepted by a provider, summed over the workspace''s broadcasts.\n'
			   || E'# TYPE broadcast_engine_messages_sent_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_messages_sent_total{workspace=%s} %s\n',
						broadcast._prom_label(s.workspace_id), s.sent), '' ORDER BY s.workspace_id)
					FROM (SELECT b.workspace_id, sum(b.sent_count) AS sent
							FROM broadcast.broadcasts b GROUP BY b.workspace_id) s), '');
	out := out || E'# HELP broadcast_engine_messages_failed_total Messages that failed for good, summed over the workspace''s broadcasts.\n'
			   || E'# TYPE broadcast_engine_messages_failed_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_messages_failed_total{workspace=%s} %s\n',
						broadcast._prom_label(s.workspace_id), s.failed), '' ORDER BY s.workspace_id)
					FROM (SELECT b.workspace_id, sum(b.failed_count) AS failed
							FROM broadcast.broadcasts b GROUP BY b.workspace_id) s), '');
	out := out || E'# HELP broadcast_engine_broadcasts Broadcasts by status.\n'
			   || E'# TYPE broadcast_engine_broadcasts gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_broadcasts{workspace=%s,status=%s} %s\n',
						broadcast._prom_label(s.workspace_id), broadcast._prom_label(s.status), s.n),
						'' ORDER BY s.workspace_id, s.status)
					FROM (SELECT b.workspace_id, b.status, count(*) AS n
							FROM broadcast.broadcasts b GROUP BY b.workspace_id, b.status) s), '');
	out := out || E'# HELP broadcast_engine_task_lag_seconds How long the oldest due task of a workspace has waited to run.\n'
			   || E'# TYPE broadcast_engine_task_lag_seconds gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_task_lag_seconds{workspace=%s} %s\n',
						broadcast._prom_label(s.workspace_id), broadcast._prom_value(s.lag)), '' ORDER BY s.workspace_id)
					FROM (SELECT t.workspace_id,
								 max(extract(epoch FROM now() - t.run_at))::float8 AS lag
							FROM broadcast.tasks t
						   WHERE t.status IN ('pending', 'running') AND t.run_at <= now()
						   GROUP BY t.workspace_id) s), '');
	out := out || E'# HELP broadcast_engine_tasks Live tasks by status.\n'
			   || E'# TYPE broadcast_engine_tasks gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_tasks{status=%s} %s\n',
						broadcast._prom_label(s.status), s.n), '' ORDER BY s.status)
					FROM (SELECT t.status, count(*) AS n FROM broadcast.tasks t
						   WHERE t.status IN ('pending', 'running', 'paused')
						   GROUP BY t.status) s), '');
	out := out || E'# HELP broadcast_engine_worker_transactions_total Units of work a worker committed since it started.\n'
			   || E'# TYPE broadcast_engine_worker_transactions_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_worker_transactions_total{kind=%s,slot=%s} %s\n',
						broadcast._prom_label(w.kind), broadcast._prom_label(w.slot::text), w.transactions),
						'' ORDER BY w.kind, w.slot)
					FROM broadcast.worker_status() w), '');
	out := out || E'# HELP broadcast_engine_worker_messages_total Messages a sender handled since it started.\n'
			   || E'# TYPE broadcast_engine_worker_messages_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_worker_messages_total{kind=%s,slot=%s} %s\n',
						broadcast._prom_label(w.kind), broadcast._prom_label(w.slot::text), w.messages),
						'' ORDER BY w.kind, w.slot)
					FROM broadcast.worker_status() w WHERE w.kind = 'sender'), '');
	out := out || E'# HELP broadcast_engine_worker_batches_total Batches a sender handled since it started.\n'
			   || E'# TYPE broadcast_engine_worker_batches_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_worker_batches_total{kind=%s,slot=%s} %s\n',
						broadcast._prom_label(w.kind), broadcast._prom_label(w.slot::text), w.batches),
						'' ORDER BY w.kind, w.slot)
					FROM broadcast.worker_status() w WHERE w.kind = 'sender'), '');
	out := out || E'# HELP broadcast_engine_worker_stage_seconds_total Time a sender spent in each stage of its batches.\n'
			   || E'# TYPE broadcast_engine_worker_stage_seconds_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_worker_stage_seconds_total{kind=%s,slot=%s,stage=%s} %s\n',
						broadcast._prom_label(w.kind), broadcast._prom_label(w.slot::text), broadcast._prom_label(s.stage),
						broadcast._prom_value(s.ms / 1000.0)), '' ORDER BY w.kind, w.slot, s.stage)
					FROM broadcast.worker_status() w,
						 LATERAL (VALUES ('claim', w.claim_ms), ('render', w.render_ms),
										 ('send', w.send_ms), ('record', w.record_ms)) s(stage, ms)
				   WHERE w.kind = 'sender'), '');
	out := out || E'# HELP broadcast_engine_breaker_state Circuit breaker of a provider account or workspace pair: 1 for its current state.\n'
			   || E'# TYPE broadcast_engine_breaker_state gauge\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_breaker_state{scope=%s,workspace=%s,integration=%s,state=%s} %s\n',
						broadcast._prom_label(r.scope), broadcast._prom_label(r.workspace_id),
						broadcast._prom_label(r.integration_id), broadcast._prom_label(s.state),
						CASE WHEN r.breaker = s.state THEN 1 ELSE 0 END),
						'' ORDER BY r.scope, r.workspace_id, r.integration_id, s.state)
					FROM broadcast.rate_limits() r,
						 (VALUES ('closed'), ('half-open'), ('open')) s(state)), '');
	out := out || E'# HELP broadcast_engine_rate_limit_throttled_total Sends a rate limit held back.\n'
			   || E'# TYPE broadcast_engine_rate_limit_throttled_total counter\n'
			   || coalesce((SELECT string_agg(format(E'broadcast_engine_rate_limit_throttled_total{scope=%s,workspace=%s,integration=%s} %s\n',
						broadcast._prom_label(r.scope), broadcast._prom_label(r.workspace_id),
						broadcast._prom_label(r.integration_id), r.throttled),
						'' ORDER BY r.scope, r.workspace_id, r.integration_id)
					FROM broadcast.rate_limits() r), '');
	RETURN out;
END
$$;

COMMENT ON FUNCTION broadcast.edge_metrics() IS 'The edge''s /metrics page: queue depth, dead letters, counters, stage timings, breakers, task lag (Prometheus text format)';

REVOKE ALL ON FUNCTION broadcast.edge_metrics() FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.edge_metrics() TO broadcast_edge;
GRANT ALL ON FUNCTION broadcast.edge_metrics() TO broadcast_admin;
