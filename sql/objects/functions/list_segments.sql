CREATE OR REPLACE FUNCTION broadcast.list_segments(workspace_id text)
RETURNS TABLE (segment_id text, name text, definition jsonb, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(list_segments.workspace_id);
	RETURN QUERY
		SELECT g.segment_id, g.name, g.definition, g.created_at, g.updated_at
		  FROM broadcast.segments g
		 WHERE g.workspace_id = list_segments.workspace_id
		 ORDER BY g.segment_id;
END
$$;

COMMENT ON FUNCTION broadcast.list_segments(text) IS 'The segments of a workspace';
