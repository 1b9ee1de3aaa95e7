/*
 * 75_sender_isolation: a pair (workspace, integration) whose work keeps
 * failing is isolated by the senders, not allowed to stop them (issue 12,
 * item 1), and a template is capped in size at save (item 5,
 * functions/create_template.sql).  broadcast.isolated_pairs lists the pairs
 * the senders skip for now, with the error that made them, read from shared
 * memory (src/isolation.c).
 */
REVOKE ALL ON FUNCTION broadcast.isolated_pair_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.isolated_pair_status() TO broadcast_admin;
COMMENT ON FUNCTION broadcast.isolated_pair_status() IS
	'Pairs (workspace, integration) the senders skip until retry_at, after failures in a row; the last error says why';

CREATE VIEW broadcast.isolated_pairs AS
SELECT s.workspace_id, s.integration_id, s.failures, s.last_error, s.sqlstate, s.since, s.retry_at
  FROM broadcast.isolated_pair_status() s;
REVOKE ALL ON broadcast.isolated_pairs FROM PUBLIC;
GRANT SELECT ON broadcast.isolated_pairs TO broadcast_admin;
COMMENT ON VIEW broadcast.isolated_pairs IS
	'Pairs (workspace, integration) the senders skip for now, with their last error; empty when all is well';

