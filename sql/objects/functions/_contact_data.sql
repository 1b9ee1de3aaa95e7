/*
 * What templates see as "contact": the custom properties, then the columns
 * (which win on a name clash), and the properties again under "properties".
 */

CREATE OR REPLACE FUNCTION broadcast._contact_data(p_workspace_id text, p_email text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT c.properties || jsonb_build_object(
			'email', c.email, 'first_name', c.first_name, 'last_name', c.last_name,
			'language', c.language, 'timezone', c.timezone, 'properties', c.properties)
	  FROM broadcast.contacts c
	 WHERE c.workspace_id = p_workspace_id AND c.email = p_email
$$;
