CREATE OR REPLACE FUNCTION broadcast.pause_broadcast(workspace_id text, broadcast_id text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize_caller(pause_broadcast.workspace_id);
	b := broadcast._get_broadcast(pause_broadcast.workspace_id, pause_broadcast.broadcast_id);
	IF b.status NOT IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected') THEN
		PERFORM broadcast._state_error(b, 'pause', 'scheduled or sending');
	END IF;
	UPDATE broadcast.broadcasts x SET status = 'paused', paused_from = b.status,
		   paused_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET status = 'paused', lease_until = NULL, updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running');
	RETURN 'paused';
END
$$;
