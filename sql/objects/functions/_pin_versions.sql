/*
 * pins the latest version of every variation template, in one statement,
 * then the latest versions of the snippets each renders
 */

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
	UPDATE broadcast.broadcast_variations v
	   SET snippets = broadcast._template_snippets(t.workspace_id, t.subject, 'subject')
					  || broadcast._template_snippets(t.workspace_id, t.html, 'html')
					  || broadcast._template_snippets(t.workspace_id, t.text_body, 'text_body')
	  FROM broadcast.templates t
	 WHERE v.workspace_id = p_workspace_id AND v.broadcast_id = p_broadcast_id
	   AND t.workspace_id = v.workspace_id AND t.template_id = v.template_id AND t.version = v.version;
END
$$;
