/* puts a broadcast's dead letters back in the queue, to be sent again now */

CREATE OR REPLACE FUNCTION broadcast.retry_dead_letters(workspace_id text, broadcast_id text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(retry_dead_letters.workspace_id);
	b := broadcast._get_broadcast(retry_dead_letters.workspace_id, retry_dead_letters.broadcast_id);
	IF b.status = 'cancelled' THEN
		PERFORM broadcast._state_error(b, 'retry dead letters of', 'not cancelled');
	END IF;
	UPDATE broadcast.email_queue q
	   SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id AND q.status = 'dead';
	GET DIAGNOSTICS n = ROW_COUNT;
	/* they count as failed until they are sent */
	UPDATE broadcast.broadcasts x SET failed_count = greatest(x.failed_count - n, 0), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	IF n > 0 THEN
		PERFORM broadcast._wake_senders();
	END IF;
	RETURN n;
END
$$;
