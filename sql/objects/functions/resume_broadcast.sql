CREATE OR REPLACE FUNCTION broadcast.resume_broadcast(workspace_id text, broadcast_id text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize_caller(resume_broadcast.workspace_id);
	b := broadcast._get_broadcast(resume_broadcast.workspace_id, resume_broadcast.broadcast_id);
	IF b.status <> 'paused' THEN
		PERFORM broadcast._state_error(b, 'resume', 'paused');
	END IF;
	UPDATE broadcast.broadcasts x SET status = b.paused_from, paused_from = NULL,
		   paused_at = NULL, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	/* a broadcast paused before it started keeps its send time; others go on now */
	UPDATE broadcast.tasks t
	   SET status = 'pending', updated_at = now(),
		   run_at = CASE WHEN b.paused_from = 'scheduled' THEN greatest(t.run_at, now()) ELSE now() END
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id AND t.status = 'paused';
	PERFORM broadcast._wake_scheduler();
	PERFORM broadcast._wake_senders();
	RETURN b.paused_from;
END
$$;
