/*
 * One row per broadcast that is scheduled or sending: progress, the average
 * send rate since it started, and the time left at that rate.
 */

CREATE VIEW broadcast.progress WITH (security_invoker='true') AS
 SELECT b.workspace_id,
    b.broadcast_id,
    b.name,
    b.status,
    t.phase,
    b.total_recipients AS total,
    b.enqueued_count AS enqueued,
    b.sent_count AS sent,
    b.failed_count AS failed,
        CASE
            WHEN (b.total_recipients > 0) THEN round(((100.0 * ((b.sent_count + b.failed_count))::numeric) / (b.total_recipients)::numeric), 1)
            ELSE NULL::numeric
        END AS percent,
        CASE
            WHEN ((b.started_at IS NOT NULL) AND (now() > b.started_at)) THEN round((((b.sent_count + b.failed_count))::numeric / EXTRACT(epoch FROM (now() - b.started_at))), 1)
            ELSE NULL::numeric
        END AS rate_per_second,
        CASE
            WHEN (((b.sent_count + b.failed_count) > 0) AND (now() > b.started_at)) THEN make_interval(secs => (((GREATEST(((b.total_recipients - b.sent_count) - b.failed_count), (0)::bigint))::double precision * (EXTRACT(epoch FROM (now() - b.started_at)))::double precision) / ((b.sent_count + b.failed_count))::double precision))
            ELSE NULL::interval
        END AS eta,
    b.started_at,
    b.send_at,
    t.last_error
   FROM (broadcast.broadcasts b
     LEFT JOIN broadcast.tasks t ON (((t.workspace_id = b.workspace_id) AND (t.broadcast_id = b.broadcast_id) AND (t.status = ANY (ARRAY['pending'::text, 'running'::text, 'paused'::text])))))
  WHERE (b.status = ANY (ARRAY['scheduled'::text, 'processing'::text, 'testing'::text, 'test_completed'::text, 'winner_selected'::text, 'paused'::text]));

GRANT SELECT ON TABLE broadcast.progress TO broadcast_user;
GRANT SELECT ON TABLE broadcast.progress TO broadcast_admin;
