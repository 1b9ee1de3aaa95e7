/*
 * 05_roles: roles that the function files grant to, created before every
 * function is (re)created (parts numbered below 10 run first).
 *
 * broadcast_edge is the NOLOGIN role the HTTP edge worker runs every
 * request as (70_edge.sql, docs/edge.md).
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
