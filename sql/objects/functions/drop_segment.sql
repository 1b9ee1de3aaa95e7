CREATE OR REPLACE FUNCTION broadcast.drop_segment(workspace_id text, segment_id text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text[];
BEGIN
	PERFORM broadcast._authorize_caller(drop_segment.workspace_id);
	PERFORM broadcast._require_segment(drop_segment.workspace_id, drop_segment.segment_id, true);
	users := broadcast._segment_users(drop_segment.workspace_id, drop_segment.segment_id,
		ARRAY['draft', 'scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused']);
	IF users IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_in_use',
			MESSAGE = format('segment %s is used by %s broadcast(s) that have not ended',
							 quote_literal(drop_segment.segment_id), cardinality(users)),
			DETAIL = format('Broadcasts: %s.', array_to_string(users, ', ')),
			HINT = 'Cancel them, wait until they complete, or change a draft''s segments with update_broadcast().';
	END IF;
	DELETE FROM broadcast.segments g
	 WHERE g.workspace_id = drop_segment.workspace_id AND g.segment_id = drop_segment.segment_id;
END
$$;

COMMENT ON FUNCTION broadcast.drop_segment(text, text) IS
	'Drops a segment that no unfinished broadcast uses';
