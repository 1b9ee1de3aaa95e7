/* pins the latest version of every variation template, in one statement */

CREATE OR REPLACE FUNCTION broadcast._pin_versions(p_workspace_id text, p_broadcast_id text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	DELETE FROM broadcast.broadcast_variations v
	 WHERE v.workspace_id = p_workspace_id AND v.broadcast_id = p_broadcast_id;
	INSERT INTO broadcast.broadcast_variations (workspace_id, broadcast_id, variation, template_id, version)
	SELECT b.workspace_id, b.broadcast_id, (t.ord - 1)::smallint, t.template_id,
		   (SELECT max(x.version) FROM broadcast.templates x
			 WHERE x.workspace_id = b.workspace_id AND x.template_id = t.template_id)
	  FROM broadcast.broadcasts b,
		   unnest(coalesce(b.variations, ARRAY[b.template_id])) WITH ORDINALITY AS t(template_id, ord)
	 WHERE b.workspace_id = p_workspace_id AND b.broadcast_id = p_broadcast_id;
END
$$;
