CREATE OR REPLACE FUNCTION broadcast.create_segment(workspace_id text, segment_id text, name text, definition jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(create_segment.workspace_id);
	PERFORM broadcast._check_id('segment', create_segment.segment_id);
	PERFORM broadcast._check_segment_name(create_segment.name);
	PERFORM broadcast._segment_compile(create_segment.workspace_id, create_segment.definition);
	IF (SELECT count(*) FROM broadcast.segments g WHERE g.workspace_id = create_segment.workspace_id) >= 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = 'a workspace has at most 1000 segments';
	END IF;
	INSERT INTO broadcast.segments (workspace_id, segment_id, name, definition)
	VALUES (create_segment.workspace_id, create_segment.segment_id, create_segment.name,
			create_segment.definition)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('segment %s already exists in workspace %s',
							 quote_literal(create_segment.segment_id), quote_literal(create_segment.workspace_id));
	END IF;
	RETURN create_segment.segment_id;
END
$$;

COMMENT ON FUNCTION broadcast.create_segment(text, text, text, jsonb) IS
	'Saves an audience definition (and/or/not over contact, list and engagement conditions)';
