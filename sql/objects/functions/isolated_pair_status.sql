/*
 * 75_sender_isolation: a pair (workspace, integration) whose work keeps
 * failing is isolated by the senders, not allowed to stop them (issue 12,
 * item 1), and a template is capped in size at save (item 5).
 *
 * broadcast.isolated_pairs (a view over isolated_pair_status()) lists the pairs the senders skip for now, with
 * the error that made them, read from shared memory (src/isolation.c).
 */

CREATE OR REPLACE FUNCTION broadcast.isolated_pair_status(OUT workspace_id text, OUT integration_id text, OUT failures integer, OUT last_error text, OUT sqlstate text, OUT since timestamp with time zone, OUT retry_at timestamp with time zone) RETURNS SETOF record
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'be_isolated_pairs';

COMMENT ON FUNCTION broadcast.isolated_pair_status(OUT workspace_id text, OUT integration_id text, OUT failures integer, OUT last_error text, OUT sqlstate text, OUT since timestamp with time zone, OUT retry_at timestamp with time zone) IS 'Pairs (workspace, integration) the senders skip until retry_at, after failures in a row; the last error says why';

REVOKE ALL ON FUNCTION broadcast.isolated_pair_status(OUT workspace_id text, OUT integration_id text, OUT failures integer, OUT last_error text, OUT sqlstate text, OUT since timestamp with time zone, OUT retry_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.isolated_pair_status(OUT workspace_id text, OUT integration_id text, OUT failures integer, OUT last_error text, OUT sqlstate text, OUT since timestamp with time zone, OUT retry_at timestamp with time zone) TO broadcast_admin;
