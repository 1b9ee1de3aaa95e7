/*
 * The HTTP edge (src/edge/): a background worker that serves the one-click
 * unsubscribe page, the providers' webhooks and a Prometheus scrape.
 *
 * It runs every request as broadcast_edge, a NOLOGIN role that may only
 * call what the edge calls: unsubscribe(), unsubscribe_page() and
 * record_webhook() (through broadcast_webhook, the web fronts' role) and
 * edge_metrics().  The worker connects as the bootstrap superuser and sets
 * its session authorization to broadcast_edge before it serves anything
 * (docs/security.md).
 *
 * Workspaces gain an unsubscribe_page setting (the page's texts) and
 * update_workspace() to change settings after creation; both validate
 * through _check_workspace_settings().
 */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_edge') THEN
		CREATE ROLE broadcast_edge NOLOGIN;
	END IF;
END
$roles$;
/* record_webhook and unsubscribe, and _authorize_webhook's "any workspace" for web fronts */
GRANT broadcast_webhook TO broadcast_edge;

/* ------------------------------------------------------------------------
 * Workspace settings
 * ------------------------------------------------------------------------ */

/* _check_workspace_settings (40_events_input.sql) also checks unsubscribe_page */
CREATE OR REPLACE FUNCTION broadcast.create_workspace(
	workspace_id text,
	name text,
	timezone text DEFAULT 'UTC',
	settings jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('create a workspace');
	PERFORM broadcast._check_id('workspace', create_workspace.workspace_id);
	IF create_workspace.name IS NULL OR btrim(create_workspace.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace name must not be empty';
	END IF;
	PERFORM broadcast._check_timezone(create_workspace.timezone);
	PERFORM broadcast._check_workspace_settings(settings);
	IF EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = create_workspace.workspace_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('workspace %s already exists', quote_literal(create_workspace.workspace_id));
	END IF;

	INSERT INTO broadcast.workspaces (workspace_id, name, timezone, settings)
	VALUES (create_workspace.workspace_id, create_workspace.name, create_workspace.timezone, settings);
	/* 244 random bits from the server's strong random source */
	INSERT INTO broadcast.workspace_secrets (workspace_id, unsubscribe_secret)
	VALUES (create_workspace.workspace_id,
			uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
	RETURN create_workspace.workspace_id;
END
$$;

/*
 * Changes a workspace's settings: the keys given replace the stored ones,
 * a key given as JSON null is removed.  The result is validated as a whole
 * and returned.
 */
CREATE FUNCTION broadcast.update_workspace(workspace_id text, settings jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	merged jsonb;
BEGIN
	PERFORM broadcast._require_admin('update a workspace');
	PERFORM broadcast._check_id('workspace', update_workspace.workspace_id);
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace settings must be a JSON object';
	END IF;
	SELECT w.settings INTO merged FROM broadcast.workspaces w
	 WHERE w.workspace_id = update_workspace.workspace_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(update_workspace.workspace_id));
	END IF;
	merged := jsonb_strip_nulls(merged || settings);
	PERFORM broadcast._check_workspace_settings(merged);
	UPDATE broadcast.workspaces w SET settings = merged
	 WHERE w.workspace_id = update_workspace.workspace_id;
	RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION broadcast.update_workspace(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.update_workspace(text, jsonb) TO broadcast_admin;
COMMENT ON FUNCTION broadcast.update_workspace(text, jsonb) IS
	'Merges settings into a workspace''s settings (null removes a key) and returns the result';

/* ------------------------------------------------------------------------
 * What the edge calls
 * ------------------------------------------------------------------------ */

/*
 * The texts of the unsubscribe page for a token (the workspace's
 * unsubscribe_page setting, '{}' when unset), after checking the token as
 * unsubscribe() does.  Changes nothing: a GET of the link only shows this.
 */
CREATE FUNCTION broadcast.unsubscribe_page(token text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	secret bytea;
	page jsonb;
BEGIN
	IF token IS NULL OR token = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token is empty.';
	END IF;
	t := broadcast._unsub_token_parse(token);
	SELECT s.unsubscribe_secret, coalesce(w.settings->'unsubscribe_page', '{}')
	  INTO secret, page
	  FROM broadcast.workspace_secrets s JOIN broadcast.workspaces w USING (workspace_id)
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._unsub_token_verify(token, secret) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;
	RETURN page;
END
$$;
REVOKE ALL ON FUNCTION broadcast.unsubscribe_page(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.unsubscribe_page(text) TO broadcast_edge, broadcast_webhook;

/* a Prometheus label value: backslash, double quote and newline escaped */
CREATE FUNCTION broadcast._prom_label(v text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT '"' || replace(replace(replace(coalesce(v, ''), E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"'
$$;

/* a Prometheus sample value */
CREATE FUNCTION broadcast._prom_value(v float8)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN v IS NULL THEN 'NaN' WHEN v = 'Infinity' THEN '+Inf' WHEN v = '-Infinity' THEN '-Inf'
				ELSE v::text END
$$;

/*
 * The /metrics scrape in Prometheus text format 0.0.4, from queue_health,
 * broadcasts, worker_status(), rate_limits() and tasks (docs/edge.md lists
 * the names).  Runs as the owner: the edge's role reads no table itself.
 */
CREATE FUNCTION broadcast.edge_metrics()
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
REVOKE ALL ON FUNCTION broadcast.edge_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.edge_metrics() TO broadcast_edge, broadcast_admin;
COMMENT ON FUNCTION broadcast.edge_metrics() IS
	'The edge''s /metrics page: queue depth, dead letters, counters, stage timings, breakers, task lag (Prometheus text format)';
