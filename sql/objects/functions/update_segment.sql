/*
 * NULL leaves a setting as it is.  A segment is read when a broadcast
 * expands, so it cannot change under a broadcast that is scheduled or
 * sending: its audience would differ between chunks.
 */
CREATE OR REPLACE FUNCTION broadcast.update_segment(workspace_id text, segment_id text, name text DEFAULT NULL,
										 definition jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text[];
BEGIN
	PERFORM broadcast._authorize_caller(update_segment.workspace_id);
	PERFORM broadcast._require_segment(update_segment.workspace_id, update_segment.segment_id, true);
	IF update_segment.name IS NOT NULL THEN
		PERFORM broadcast._check_segment_name(update_segment.name);
	END IF;
	IF update_segment.definition IS NOT NULL THEN
		PERFORM broadcast._segment_compile(update_segment.workspace_id, update_segment.definition);
		users := broadcast._segment_users(update_segment.workspace_id, update_segment.segment_id,
			ARRAY['scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused']);
		IF users IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_in_use',
				MESSAGE = format('segment %s is used by %s broadcast(s) that are scheduled or sending',
								 quote_literal(update_segment.segment_id), cardinality(users)),
				DETAIL = format('Broadcasts: %s.', array_to_string(users, ', ')),
				HINT = 'Wait until they end, or create a new segment.';
		END IF;
	END IF;
	UPDATE broadcast.segments g SET
		name = coalesce(update_segment.name, g.name),
		definition = coalesce(update_segment.definition, g.definition),
		updated_at = now()
	 WHERE g.workspace_id = update_segment.workspace_id AND g.segment_id = update_segment.segment_id;
	RETURN update_segment.segment_id;
END
$$;

COMMENT ON FUNCTION broadcast.update_segment(text, text, text, jsonb) IS
	'Renames a segment or replaces its definition (not while a broadcast using it is scheduled or sending)';
