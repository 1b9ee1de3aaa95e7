CREATE VIEW broadcast.isolated_pairs AS
 SELECT s.workspace_id,
    s.integration_id,
    s.failures,
    s.last_error,
    s.sqlstate,
    s.since,
    s.retry_at
   FROM broadcast.isolated_pair_status() s(workspace_id, integration_id, failures, last_error, sqlstate, since, retry_at);

COMMENT ON VIEW broadcast.isolated_pairs IS 'Pairs (workspace, integration) the senders skip for now, with their last error; empty when all is well';

GRANT SELECT ON TABLE broadcast.isolated_pairs TO broadcast_admin;
