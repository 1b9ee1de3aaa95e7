/* a stored value out of bounds (written before 1.3) counts as the default, never as an error */

CREATE OR REPLACE FUNCTION broadcast._soft_bounce_threshold(p_workspace_id text) RETURNS integer
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
	SELECT CASE WHEN jsonb_typeof(w.settings->'soft_bounce_threshold') = 'number'
					 AND (w.settings->>'soft_bounce_threshold') ~ '^[0-9]{1,4}(\.[0-9]+)?$'
					 AND (w.settings->>'soft_bounce_threshold')::numeric BETWEEN 1 AND 1000
				THEN ceil((w.settings->>'soft_bounce_threshold')::numeric)::integer
				ELSE 3 END
	  FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id
$_$;
