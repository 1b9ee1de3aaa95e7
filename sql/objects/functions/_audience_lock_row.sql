/*
 * A workspace's row exists from its creation, so the first lock never
 * waits on another transaction's insert of it (only a restored database
 * creates rows lazily).
 */

CREATE OR REPLACE FUNCTION broadcast._audience_lock_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	INSERT INTO broadcast.audience_locks (workspace_id)
	SELECT n.workspace_id FROM new_rows n
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION broadcast._audience_lock_row() FROM PUBLIC;
