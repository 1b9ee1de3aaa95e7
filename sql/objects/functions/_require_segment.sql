/* locks the segment row; raises when it does not exist */
CREATE OR REPLACE FUNCTION broadcast._require_segment(p_workspace_id text, p_segment_id text, p_lock boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_id('segment', p_segment_id);
	IF p_lock THEN
		PERFORM 1 FROM broadcast.segments g
		 WHERE g.workspace_id = p_workspace_id AND g.segment_id = p_segment_id FOR UPDATE;
	ELSE
		PERFORM 1 FROM broadcast.segments g
		 WHERE g.workspace_id = p_workspace_id AND g.segment_id = p_segment_id;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('segment %s does not exist in workspace %s',
							 quote_literal(p_segment_id), quote_literal(p_workspace_id));
	END IF;
END
$$;
