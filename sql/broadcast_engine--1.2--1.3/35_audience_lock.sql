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

/* the exclusive lock: waits for expansion chunks in flight, held to commit */
CREATE OR REPLACE FUNCTION broadcast._lock_audience(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM 1 FROM broadcast.audience_locks l WHERE l.workspace_id = p_workspace_id FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO broadcast.audience_locks (workspace_id) VALUES (p_workspace_id)
		ON CONFLICT DO NOTHING;
		PERFORM 1 FROM broadcast.audience_locks l WHERE l.workspace_id = p_workspace_id FOR UPDATE;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION broadcast._lock_audience(text) FROM PUBLIC;

/*
 * Tries to take the lock without waiting: shared (expansion) or exclusive.
 * Returns whether it was taken; if so it is held to the end of the
 * transaction.
 */
CREATE FUNCTION broadcast._try_lock_audience(p_workspace_id text, p_exclusive boolean)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.audience_locks l WHERE l.workspace_id = p_workspace_id) THEN
		INSERT INTO broadcast.audience_locks (workspace_id) VALUES (p_workspace_id)
		ON CONFLICT DO NOTHING;
	END IF;
	IF p_exclusive THEN
		PERFORM 1 FROM broadcast.audience_locks l WHERE l.workspace_id = p_workspace_id
		  FOR UPDATE SKIP LOCKED;
	ELSE
		PERFORM 1 FROM broadcast.audience_locks l WHERE l.workspace_id = p_workspace_id
		  FOR SHARE SKIP LOCKED;
	END IF;
	RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION broadcast._try_lock_audience(text, boolean) FROM PUBLIC;

/*
 * A workspace's row exists from its creation, so the first lock never
 * waits on another transaction's insert of it (only a restored database
 * creates rows lazily).
 */
CREATE FUNCTION broadcast._audience_lock_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO broadcast.audience_locks (workspace_id)
	SELECT n.workspace_id FROM new_rows n
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION broadcast._audience_lock_row() FROM PUBLIC;

CREATE TRIGGER workspaces_audience_lock AFTER INSERT ON broadcast.workspaces
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._audience_lock_row();

INSERT INTO broadcast.audience_locks (workspace_id)
SELECT w.workspace_id FROM broadcast.workspaces w
ON CONFLICT DO NOTHING;
