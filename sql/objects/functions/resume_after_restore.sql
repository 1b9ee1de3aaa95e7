/*
 * The operator's word that a restored copy may send: adopts every row of
 * the workspace (or of all workspaces) that came from another database and
 * resumes the broadcasts the hold paused.  Broadcasts that were paused by
 * hand before the dump stay paused.  Returns the number resumed.
 */

CREATE OR REPLACE FUNCTION broadcast.resume_after_restore(workspace_id text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	cur uuid := broadcast._instance_nonce();
	n bigint;
BEGIN
	PERFORM broadcast._require_admin('resume broadcasts after a restore');
	IF resume_after_restore.workspace_id IS NOT NULL THEN
		PERFORM broadcast._authorize(resume_after_restore.workspace_id);
	END IF;
	/* first turn every foreign row into the hold, so what follows sees one state */
	PERFORM broadcast._hold_restored();
	WITH foreign_b AS (
		SELECT b.workspace_id, b.broadcast_id, b.status, b.paused_from,
			   b.status = 'paused' AND b.last_error = broadcast._restore_hold_reason() AS held
		  FROM broadcast.broadcasts b
		 WHERE (b.instance_nonce < cur OR b.instance_nonce > cur)
		   AND (resume_after_restore.workspace_id IS NULL
				OR b.workspace_id = resume_after_restore.workspace_id)
		   FOR UPDATE OF b
	), resumed AS (
		UPDATE broadcast.broadcasts b
		   SET instance_nonce = cur,
			   status = CASE WHEN f.held THEN b.paused_from ELSE b.status END,
			   paused_from = CASE WHEN f.held THEN NULL ELSE b.paused_from END,
			   paused_at = CASE WHEN f.held THEN NULL ELSE b.paused_at END,
			   last_error = CASE WHEN b.last_error = broadcast._restore_hold_reason() THEN NULL
								 ELSE b.last_error END,
			   updated_at = now()
		  FROM foreign_b f
		 WHERE b.workspace_id = f.workspace_id AND b.broadcast_id = f.broadcast_id
		RETURNING b.workspace_id, b.broadcast_id, f.held, f.paused_from
	), tasks_resumed AS (
		/* as resume_broadcast: a broadcast held before it started keeps its send time */
		UPDATE broadcast.tasks t
		   SET status = 'pending', updated_at = now(),
			   run_at = CASE WHEN r.paused_from = 'scheduled' THEN greatest(t.run_at, now()) ELSE now() END
		  FROM resumed r
		 WHERE r.held AND t.workspace_id = r.workspace_id AND t.broadcast_id = r.broadcast_id
		   AND t.status = 'paused'
	), queue_now AS (
		/* rows leased by a sender of the old database are due again now */
		UPDATE broadcast.email_queue q
		   SET lease_until = NULL, next_attempt_at = least(q.next_attempt_at, now())
		  FROM resumed r
		 WHERE r.held AND q.workspace_id = r.workspace_id AND q.broadcast_id = r.broadcast_id
		   AND q.status IN ('pending', 'sending') AND q.lease_until IS NOT NULL
	)
	SELECT count(*) FILTER (WHERE held) INTO n FROM resumed;
	PERFORM broadcast._wake_scheduler();
	PERFORM broadcast._wake_senders();
	RETURN n;
END
$$;

REVOKE ALL ON FUNCTION broadcast.resume_after_restore(workspace_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.resume_after_restore(workspace_id text) TO broadcast_admin;
