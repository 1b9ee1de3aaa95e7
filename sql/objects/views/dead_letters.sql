/* messages that failed for good; re-queue them with retry_dead_letters() */

CREATE VIEW broadcast.dead_letters WITH (security_invoker='true') AS
 SELECT q.workspace_id,
    q.broadcast_id,
    q.email,
    q.integration_id,
    q.attempts,
    q.last_error,
    q.message_id
   FROM broadcast.email_queue q
  WHERE (q.status = 'dead'::text);

GRANT SELECT ON TABLE broadcast.dead_letters TO broadcast_user;
GRANT SELECT ON TABLE broadcast.dead_letters TO broadcast_admin;
