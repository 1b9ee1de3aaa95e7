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
/* the role broadcast_edge is created in 05_roles.sql, before the functions granted to it */

/* ------------------------------------------------------------------------
 * Workspace settings
 * ------------------------------------------------------------------------ */

REVOKE ALL ON FUNCTION broadcast.update_workspace(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.update_workspace(text, jsonb) TO broadcast_admin;
COMMENT ON FUNCTION broadcast.update_workspace(text, jsonb) IS
	'Merges settings into a workspace''s settings (null removes a key) and returns the result';

/* ------------------------------------------------------------------------
 * What the edge calls
 * ------------------------------------------------------------------------ */

REVOKE ALL ON FUNCTION broadcast.unsubscribe_page(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.unsubscribe_page(text) TO broadcast_edge, broadcast_webhook;

REVOKE ALL ON FUNCTION broadcast.edge_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.edge_metrics() TO broadcast_edge, broadcast_admin;
COMMENT ON FUNCTION broadcast.edge_metrics() IS
	'The edge''s /metrics page: queue depth, dead letters, counters, stage timings, breakers, task lag (Prometheus text format)';
