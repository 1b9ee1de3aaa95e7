/* the broadcasts that use a segment and are in the given states */
CREATE OR REPLACE FUNCTION broadcast._segment_users(p_workspace_id text, p_segment_id text, p_states text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT array_agg(b.broadcast_id ORDER BY b.broadcast_id)
	  FROM broadcast.broadcasts b
	 WHERE b.workspace_id = p_workspace_id AND p_segment_id = ANY (b.segments)
	   AND b.status = ANY (p_states)
$$;
