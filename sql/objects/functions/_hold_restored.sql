/*
 * Turns rows that came from another database into a visible hold; called by
 * the scheduler at the start of every cycle (and so by run_tasks).  Cheap
 * when there is nothing to do: two empty scans of broadcasts_instance_idx.
 *  - broadcasts in flight (scheduled, sending, testing, waiting for a
 *    winner) are paused with the reason in last_error;
 *  - every live task of a foreign broadcast is paused (tasks may be loaded
 *    after their broadcast was held);
 *  - drafts, and ended broadcasts with nothing left in the queue, are
 *    adopted silently (they send nothing);
 *  - ended broadcasts with rows still queued keep the foreign nonce (the
 *    senders skip those rows) and show the reason;
 *  - broadcasts paused by hand stay as they are (the senders skip them).
 * Returns the number of broadcasts it held.
 */

CREATE OR REPLACE FUNCTION broadcast._hold_restored() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	cur uuid := broadcast._instance_nonce();
	n bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.broadcasts b
					WHERE b.instance_nonce < cur OR b.instance_nonce > cur) THEN
		RETURN 0;
	END IF;
	WITH foreign_b AS (
		SELECT b.workspace_id, b.broadcast_id, b.status,
			   EXISTS (SELECT 1 FROM broadcast.email_queue q
						WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
						  AND q.status IN ('pending', 'sending')) AS queued
		  FROM broadcast.broadcasts b
		 WHERE (b.instance_nonce < cur OR b.instance_nonce > cur)
		   AND (b.status IN ('draft', 'scheduled', 'processing', 'testing', 'test_completed',
							 'winner_selected')
				OR (b.status IN ('completed', 'cancelled', 'failed')
					AND b.last_error IS DISTINCT FROM broadcast._restore_hold_reason()))
		   FOR UPDATE OF b
	), changed AS (
		UPDATE broadcast.broadcasts b
		   SET instance_nonce = CASE WHEN f.status = 'draft' OR NOT f.queued AND f.status IN
											('completed', 'cancelled', 'failed')
									 THEN cur ELSE b.instance_nonce END,
			   status = CASE WHEN f.status IN ('draft', 'completed', 'cancelled', 'failed')
							 THEN b.status ELSE 'paused' END,
			   paused_from = CASE WHEN f.status IN ('draft', 'completed', 'cancelled', 'failed')
								  THEN b.paused_from ELSE f.status END,
			   paused_at = CASE WHEN f.status IN ('draft', 'completed', 'cancelled', 'failed')
								THEN b.paused_at ELSE now() END,
			   last_error = CASE WHEN f.status = 'draft' OR NOT f.queued AND f.status IN
										('completed', 'cancelled', 'failed')
								 THEN b.last_error ELSE broadcast._restore_hold_reason() END,
			   updated_at = now()
		  FROM foreign_b f
		 WHERE b.workspace_id = f.workspace_id AND b.broadcast_id = f.broadcast_id
		RETURNING f.status
	)
	SELECT count(*) FILTER (WHERE status NOT IN ('draft', 'completed', 'cancelled', 'failed'))
	  INTO n FROM changed;

	UPDATE broadcast.tasks t
	   SET status = 'paused', lease_until = NULL, lease_token = NULL, updated_at = now()
	  FROM broadcast.broadcasts b
	 WHERE (b.instance_nonce < cur OR b.instance_nonce > cur)
	   AND t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running');
	RETURN n;
END
$$;

REVOKE ALL ON FUNCTION broadcast._hold_restored() FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast._hold_restored() TO broadcast_admin;
