/*
 * The (workspace, integration) pairs that have queued mail, with their
 * earliest due time: a loose index scan of email_queue_due_idx, one probe
 * per active pair, so its cost does not grow with idle workspaces.  The
 * senders start every cycle with it.
 */

CREATE VIEW broadcast.active_pairs AS
 WITH RECURSIVE p AS (
        ( SELECT q.workspace_id,
            q.integration_id
           FROM broadcast.email_queue q
          WHERE (q.status = ANY (ARRAY['pending'::text, 'sending'::text]))
          ORDER BY q.workspace_id, q.integration_id
         LIMIT 1)
        UNION ALL
         SELECT n.workspace_id,
            n.integration_id
           FROM p p_1,
            LATERAL ( SELECT q.workspace_id,
                    q.integration_id
                   FROM broadcast.email_queue q
                  WHERE ((q.status = ANY (ARRAY['pending'::text, 'sending'::text])) AND (ROW(q.workspace_id, q.integration_id) > ROW(p_1.workspace_id, p_1.integration_id)))
                  ORDER BY q.workspace_id, q.integration_id
                 LIMIT 1) n
        )
 SELECT p.workspace_id,
    p.integration_id,
    ( SELECT min(q.next_attempt_at) AS min
           FROM broadcast.email_queue q
          WHERE ((q.workspace_id = p.workspace_id) AND (q.integration_id = p.integration_id) AND (q.status = ANY (ARRAY['pending'::text, 'sending'::text])))) AS next_attempt_at
   FROM p;

GRANT SELECT ON TABLE broadcast.active_pairs TO broadcast_admin;
