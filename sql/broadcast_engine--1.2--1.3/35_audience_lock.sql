/*
 * The audience lock moves from advisory locks to row locks.
 *
 * 1.2 keyed it as pg_advisory_xact_lock(hashtext('broadcast_engine.audience'),
 * hashtext(workspace_id)): any role that can connect could compute the key,
 * take the lock and stall the scheduler and a victim's unsubscribes.  Now it
 * is a row of broadcast.audience_locks, a table no role but the extension's
 * owner can read or lock, so only the engine's own code (the orchestrator,
 * and SECURITY DEFINER functions after their checks) takes it.
 *
 * The semantics are those of 1.2 (docs/guarantees.md, "Suppression and
 * expansion"): an expansion chunk takes it shared (FOR SHARE), whatever
 * drops queued rows of suppressed or unsubscribed addresses takes it
 * exclusive (FOR UPDATE).  The orchestrator only tries (SKIP LOCKED): while
 * a workspace's lock is held, its task steps aside and the scheduler goes on
 * with the other workspaces.
 *
 * Rows are created on first use, so the table needs no dump: a restored
 * database fills it again as it works.
 */
CREATE TABLE broadcast.audience_locks (
	workspace_id	text PRIMARY KEY
);
COMMENT ON TABLE broadcast.audience_locks IS
	'One row per workspace, locked by the engine only: the audience lock (see _lock_audience)';
REVOKE ALL ON broadcast.audience_locks FROM PUBLIC, broadcast_admin, broadcast_user;

REVOKE ALL ON FUNCTION broadcast._lock_audience(text) FROM PUBLIC;

REVOKE ALL ON FUNCTION broadcast._try_lock_audience(text, boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION broadcast._audience_lock_row() FROM PUBLIC;

CREATE TRIGGER workspaces_audience_lock AFTER INSERT ON broadcast.workspaces
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._audience_lock_row();

INSERT INTO broadcast.audience_locks (workspace_id)
SELECT w.workspace_id FROM broadcast.workspaces w
ON CONFLICT DO NOTHING;
