CREATE OR REPLACE FUNCTION broadcast.cancel_broadcast(workspace_id text, broadcast_id text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
	dropped bigint;
BEGIN
	PERFORM broadcast._authorize_caller(cancel_broadcast.workspace_id);
	b := broadcast._get_broadcast(cancel_broadcast.workspace_id, cancel_broadcast.broadcast_id);
	IF b.status NOT IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused') THEN
		PERFORM broadcast._state_error(b, 'cancel', 'scheduled, sending or paused');
	END IF;
	/* rows a sender holds in flight finish on their own; history is kept */
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
	   AND q.status IN ('pending', 'dead')
	   AND (q.lease_until IS NULL OR q.lease_until <= now());
	GET DIAGNOSTICS dropped = ROW_COUNT;
	UPDATE broadcast.broadcasts x SET status = 'cancelled', paused_from = NULL,
		   cancelled_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET status = 'cancelled', lease_until = NULL, updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running', 'paused');
	RETURN dropped;
END
$$;
