/* the exclusive lock: waits for expansion chunks in flight, held to commit */

CREATE OR REPLACE FUNCTION broadcast._lock_audience(p_workspace_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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

REVOKE ALL ON FUNCTION broadcast._lock_audience(p_workspace_id text) FROM PUBLIC;
