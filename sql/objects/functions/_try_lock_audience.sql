/*
 * Tries to take the lock without waiting: shared (expansion) or exclusive.
 * Returns whether it was taken; if so it is held to the end of the
 * transaction.
 */

CREATE OR REPLACE FUNCTION broadcast._try_lock_audience(p_workspace_id text, p_exclusive boolean) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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

REVOKE ALL ON FUNCTION broadcast._try_lock_audience(p_workspace_id text, p_exclusive boolean) FROM PUBLIC;
