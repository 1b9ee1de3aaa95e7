/*
 * How many contacts a definition (or a saved segment) matches, how many of
 * them a broadcast would reach (active on a list, not suppressed), and a
 * sample of those, in email order.  One set-based query with the compiled
 * expression; the workspace is a parameter.
 */
CREATE OR REPLACE FUNCTION broadcast.preview_segment(workspace_id text, definition jsonb DEFAULT NULL,
										  segment_id text DEFAULT NULL, sample integer DEFAULT 10)
RETURNS TABLE (matching bigint, reachable bigint, sample_contacts jsonb)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d jsonb := preview_segment.definition;
	pred text;
BEGIN
	PERFORM broadcast._authorize_caller(preview_segment.workspace_id);
	IF (d IS NULL) = (preview_segment.segment_id IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'pass exactly one of definition and segment_id';
	END IF;
	IF preview_segment.sample IS NULL OR preview_segment.sample NOT BETWEEN 0 AND 100 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('sample must be between 0 and 100, got %s', coalesce(preview_segment.sample::text, 'NULL'));
	END IF;
	IF d IS NULL THEN
		PERFORM broadcast._require_segment(preview_segment.workspace_id, preview_segment.segment_id);
		SELECT g.definition INTO d FROM broadcast.segments g
		 WHERE g.workspace_id = preview_segment.workspace_id AND g.segment_id = preview_segment.segment_id;
	END IF;
	pred := broadcast._segment_compile(preview_segment.workspace_id, d);
	RETURN QUERY EXECUTE format(
		'WITH m AS ('
		'  SELECT c.email, c.first_name, c.last_name,'
		'         EXISTS (SELECT 1 FROM broadcast.list_members am'
		'                  WHERE am.workspace_id = $1 AND am.email = c.email AND am.status = ''active'')'
		'         AND NOT EXISTS (SELECT 1 FROM broadcast.suppressions s'
		'                          WHERE s.workspace_id = $1 AND s.email = c.email) AS reachable'
		'    FROM broadcast.contacts c WHERE c.workspace_id = $1 AND %s)'
		'SELECT count(*), count(*) FILTER (WHERE m.reachable),'
		'       coalesce((SELECT jsonb_agg(jsonb_build_object(''email'', x.email, ''first_name'', x.first_name,'
		'                                                     ''last_name'', x.last_name, ''reachable'', x.reachable)'
		'                                  ORDER BY x.email)'
		'                  FROM (SELECT * FROM m ORDER BY m.email LIMIT $2) x), ''[]'')'
		'  FROM m', pred)
		USING preview_segment.workspace_id, preview_segment.sample;
END
$$;

COMMENT ON FUNCTION broadcast.preview_segment(text, jsonb, text, integer) IS
	'Counts the contacts a segment definition matches and reaches, with a sample';
