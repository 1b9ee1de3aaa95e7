/* _authorize as a condition, for SQL functions that must stay inlinable */

CREATE OR REPLACE FUNCTION broadcast._authorized(p_workspace_id text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._authorize(p_workspace_id);
	RETURN true;
END
$$;
