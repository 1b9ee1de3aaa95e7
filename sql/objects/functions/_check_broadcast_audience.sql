/* a broadcast's audience: at least one list or segment (or a follow-up), all existing */
CREATE OR REPLACE FUNCTION broadcast._check_broadcast_audience(p_workspace_id text, p_lists text[], p_segments text[],
													p_followup boolean)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s text;
BEGIN
	IF p_segments IS NULL OR array_position(p_segments, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'segments must not be NULL or contain NULL';
	END IF;
	IF cardinality(p_segments) > 20 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('a broadcast has at most 20 segments, got %s', cardinality(p_segments));
	END IF;
	IF coalesce(cardinality(p_lists), 0) = 0 AND cardinality(p_segments) = 0 AND NOT p_followup THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a broadcast needs at least one list or segment';
	END IF;
	FOREACH s IN ARRAY p_segments LOOP
		PERFORM broadcast._require_segment(p_workspace_id, s);
	END LOOP;
END
$$;
