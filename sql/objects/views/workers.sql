CREATE VIEW broadcast.workers AS
 SELECT w.kind,
    w.slot,
    w.pid,
    w.started_at,
    w.last_active,
    w.transactions,
    w.messages,
    w.batches,
    w.claim_ms,
    w.render_ms,
    w.send_ms,
    w.record_ms,
    a.state,
    a.wait_event,
    a.query AS activity
   FROM (broadcast.worker_status() w(kind, slot, pid, started_at, last_active, transactions, messages, batches, claim_ms, render_ms, send_ms, record_ms)
     LEFT JOIN pg_stat_activity a ON ((a.pid = w.pid)));

GRANT SELECT ON TABLE broadcast.workers TO broadcast_admin;
