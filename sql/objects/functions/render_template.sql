/*
 * A preview of a template version (latest when version is NULL) for one
 * contact: the rendered subject, HTML and text parts, exactly as sending
 * would render them (without a broadcast or list).
 */

CREATE OR REPLACE FUNCTION broadcast.render_template(workspace_id text, template_id text, version integer, email text) RETURNS TABLE(subject text, html text, text_body text)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	t broadcast.templates;
	data jsonb;
	contact jsonb;
	rendered_html text;
BEGIN
	PERFORM broadcast._authorize(render_template.workspace_id);
	SELECT * INTO t FROM broadcast.templates x
	 WHERE x.workspace_id = render_template.workspace_id AND x.template_id = render_template.template_id
	   AND x.version = coalesce(render_template.version,
								broadcast._latest_template_version(render_template.workspace_id,
																   render_template.template_id));
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('template %s version %s does not exist in workspace %s',
							 quote_literal(render_template.template_id), render_template.version,
							 quote_literal(render_template.workspace_id));
	END IF;
	contact := broadcast._contact_data(render_template.workspace_id, lower(render_template.email));
	IF contact IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('contact %s does not exist in workspace %s',
							 broadcast._show(render_template.email), quote_literal(render_template.workspace_id));
	END IF;
	SELECT jsonb_build_object(
			'contact', contact,
			'workspace', jsonb_build_object('id', w.workspace_id, 'name', w.name, 'timezone', w.timezone),
			'broadcast', jsonb_build_object('id', NULL, 'name', NULL),
			'list', jsonb_build_object('id', NULL, 'name', NULL),
			'unsubscribe_url', broadcast.unsubscribe_url(w.workspace_id, lower(render_template.email)),
			'message_id', 'preview')
	  INTO data
	  FROM broadcast.workspaces w WHERE w.workspace_id = render_template.workspace_id;

	rendered_html := broadcast._template_render(t.html, data, t.workspace_id);
	RETURN QUERY SELECT broadcast._template_render(t.subject, data, t.workspace_id), rendered_html,
		coalesce(broadcast._template_render(t.text_body, data, t.workspace_id),
				 broadcast.html_to_text(rendered_html));
END
$$;
