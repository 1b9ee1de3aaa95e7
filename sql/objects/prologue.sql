/*
 * Roles.  Roles are cluster-wide, so they are created only when missing and
 * survive DROP EXTENSION.  broadcast_admin sees and changes every workspace
 * (and integration secrets); broadcast_user is the group every workspace role
 * belongs to; which workspaces a role may touch is recorded in
 * workspace_grants and enforced by row level security.  broadcast_webhook is
 * for web fronts: it may record events and unsubscribe, nothing else.
 * broadcast_edge is the role the HTTP edge worker runs its SQL as
 * (docs/edge.md).
 */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_admin') THEN
		CREATE ROLE broadcast_admin NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_user') THEN
		CREATE ROLE broadcast_user NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_webhook') THEN
		CREATE ROLE broadcast_webhook NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_edge') THEN
		CREATE ROLE broadcast_edge NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA broadcast TO broadcast_admin, broadcast_user, broadcast_webhook;
/* record_webhook and unsubscribe, and _authorize_webhook's "any workspace" for web fronts */
GRANT broadcast_webhook TO broadcast_edge;
