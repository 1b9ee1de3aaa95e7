/*
 * The extra audience of a broadcast, as one expression over contacts c: its
 * segments and its follow-up condition, OR-ed; NULL for a broadcast of lists
 * only (the orchestrator then keeps its list-only statements).  Read by the
 * orchestrator once per step.
 */
CREATE OR REPLACE FUNCTION broadcast._audience_predicate(p_workspace_id text, p_broadcast_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	parts text[] := '{}';
	d jsonb;
	s text;
BEGIN
	SELECT * INTO b FROM broadcast.broadcasts x
	 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	FOREACH s IN ARRAY b.segments LOOP
		SELECT g.definition INTO d FROM broadcast.segments g
		 WHERE g.workspace_id = p_workspace_id AND g.segment_id = s;
		IF NOT FOUND THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('segment %s of broadcast %s does not exist', quote_literal(s),
								 quote_literal(p_broadcast_id));
		END IF;
		parts := parts || broadcast._segment_sql(p_workspace_id, d, '$', 1, false);
	END LOOP;
	IF b.followup_of IS NOT NULL THEN
		parts := parts || broadcast._segment_sql(p_workspace_id, jsonb_build_object('and', jsonb_build_array(
			jsonb_build_object('engagement', 'received', 'broadcast', b.followup_of),
			jsonb_build_object('not', jsonb_build_object('engagement',
				CASE b.followup_condition WHEN 'not_clicked' THEN 'clicked' ELSE 'opened' END,
				'broadcast', b.followup_of)))), '$', 1, false);
	END IF;
	IF cardinality(parts) = 0 THEN
		RETURN NULL;
	END IF;
	RETURN '(' || array_to_string(parts, ' OR ') || ')';
END
$$;

REVOKE ALL ON FUNCTION broadcast._audience_predicate(text, text) FROM PUBLIC;
