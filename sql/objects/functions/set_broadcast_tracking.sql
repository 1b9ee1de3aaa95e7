/* the broadcast's switch: true, false, or NULL for the workspace's setting; before it sends */
CREATE OR REPLACE FUNCTION broadcast.set_broadcast_tracking(workspace_id text, broadcast_id text, enabled boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize(set_broadcast_tracking.workspace_id);
	b := broadcast._get_broadcast(set_broadcast_tracking.workspace_id, set_broadcast_tracking.broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled') THEN
		PERFORM broadcast._state_error(b, 'change the tracking of', 'draft or scheduled');
	END IF;
	UPDATE broadcast.broadcasts x SET tracking = enabled, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
END
$$;

REVOKE ALL ON FUNCTION broadcast.set_broadcast_tracking(text, text, boolean) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.set_broadcast_tracking(text, text, boolean) TO broadcast_user, broadcast_admin;

COMMENT ON FUNCTION broadcast.set_broadcast_tracking(text, text, boolean) IS
	'Turns first-party tracking on or off for a broadcast (NULL: as the workspace''s tracking setting)';
