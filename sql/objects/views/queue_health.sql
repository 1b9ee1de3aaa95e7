CREATE VIEW broadcast.queue_health WITH (security_invoker='true') AS
 SELECT q.workspace_id,
    q.integration_id,
    count(*) FILTER (WHERE ((q.status = ANY (ARRAY['pending'::text, 'sending'::text])) AND (NOT q.in_flight))) AS pending,
    count(*) FILTER (WHERE q.in_flight) AS in_flight,
    count(*) FILTER (WHERE ((q.status = ANY (ARRAY['pending'::text, 'sending'::text])) AND (NOT q.in_flight) AND (q.next_attempt_at <= now()))) AS due,
    count(*) FILTER (WHERE (q.status = 'dead'::text)) AS dead,
    min(q.next_attempt_at) FILTER (WHERE ((q.status = ANY (ARRAY['pending'::text, 'sending'::text])) AND (NOT q.in_flight))) AS next_attempt_at
   FROM ( SELECT e.workspace_id,
            e.broadcast_id,
            e.email,
            e.integration_id,
            e.list_id,
            e.variation,
            e.message_id,
            e.status,
            e.attempts,
            e.next_attempt_at,
            e.last_error,
            e.lease_until,
            (COALESCE((e.lease_until > now()), false) OR ((e.status = 'sending'::text) AND (e.next_attempt_at > now()))) AS in_flight
           FROM broadcast.email_queue e) q
  GROUP BY q.workspace_id, q.integration_id;

GRANT SELECT ON TABLE broadcast.queue_health TO broadcast_user;
GRANT SELECT ON TABLE broadcast.queue_health TO broadcast_admin;
