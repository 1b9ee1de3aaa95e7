/*
 * The workspace's opt-in broadcast, made or brought up to date for list:
 * the template's latest version and its snippets' pinned, the integration of the setting,
 * the list among its lists (for {{list.name}}).  Returns its integration.
 */
CREATE OR REPLACE FUNCTION broadcast._optin_broadcast(p_workspace_id text, p_list_id text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o jsonb;
	tpl text;
	integ text;
	ver integer;
	b record;
BEGIN
	SELECT w.settings->'double_opt_in' INTO o FROM broadcast.workspaces w
	 WHERE w.workspace_id = p_workspace_id;
	IF o IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('workspace %s has no double_opt_in setting', quote_literal(p_workspace_id)),
			HINT = 'Name the confirmation template, the integration and the edge''s /c address with broadcast.update_workspace(workspace_id, ''{"double_opt_in": {...}}'').';
	END IF;
	tpl := o->>'template_id';
	integ := o->>'integration_id';
	SELECT max(t.version) INTO ver FROM broadcast.templates t
	 WHERE t.workspace_id = p_workspace_id AND t.template_id = tpl;
	IF ver IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('the double opt-in template %s does not exist', quote_literal(tpl));
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.integrations i
					WHERE i.workspace_id = p_workspace_id AND i.integration_id = integ) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('the double opt-in integration %s does not exist', quote_literal(integ));
	END IF;

	INSERT INTO broadcast.broadcasts AS x (workspace_id, broadcast_id, name, lists, integration_id,
										   template_id, status, kind, started_at)
	VALUES (p_workspace_id, 'double-opt-in', 'Double opt-in confirmations', ARRAY[p_list_id], integ,
			tpl, 'processing', 'optin', now())
	ON CONFLICT (workspace_id, broadcast_id) DO NOTHING;
	SELECT x.kind, x.lists, x.integration_id, x.template_id, x.status INTO b
	  FROM broadcast.broadcasts x
	 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = 'double-opt-in';
	IF b.kind <> 'optin' THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = 'the broadcast id "double-opt-in" is taken by a broadcast',
			HINT = 'Double opt-in sends its confirmations as the broadcast "double-opt-in"; rename that broadcast''s id.';
	END IF;
	/*
	 * Changed only when something differs: the row is the senders' too.  A
	 * paused opt-in broadcast stays paused (its confirmations wait for
	 * resume_broadcast); a cancelled one takes confirmations again.
	 */
	IF NOT (p_list_id = ANY (b.lists)) OR b.integration_id <> integ OR b.template_id <> tpl
	   OR b.status NOT IN ('processing', 'paused') THEN
		UPDATE broadcast.broadcasts x
		   SET lists = CASE WHEN p_list_id = ANY (x.lists) THEN x.lists ELSE x.lists || p_list_id END,
			   integration_id = integ, template_id = tpl,
			   status = CASE WHEN x.status = 'paused' THEN 'paused' ELSE 'processing' END,
			   updated_at = now()
		 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = 'double-opt-in';
	END IF;
	INSERT INTO broadcast.broadcast_variations AS v (workspace_id, broadcast_id, variation, template_id, version)
	VALUES (p_workspace_id, 'double-opt-in', 0, tpl, ver)
	ON CONFLICT (workspace_id, broadcast_id, variation) DO UPDATE
		SET template_id = EXCLUDED.template_id, version = EXCLUDED.version
		WHERE (v.template_id, v.version) IS DISTINCT FROM (EXCLUDED.template_id, EXCLUDED.version);
	/*
	 * The snippets it renders, at their latest versions like the template
	 * (a scheduled broadcast pins them in _pin_versions); written only when
	 * they changed.
	 */
	UPDATE broadcast.broadcast_variations v
	   SET snippets = s.snippets
	  FROM (SELECT broadcast._template_snippets(t.workspace_id, t.subject, 'subject')
				   || broadcast._template_snippets(t.workspace_id, t.html, 'html')
				   || broadcast._template_snippets(t.workspace_id, t.text_body, 'text_body') AS snippets
			  FROM broadcast.templates t
			 WHERE t.workspace_id = p_workspace_id AND t.template_id = tpl AND t.version = ver) s
	 WHERE v.workspace_id = p_workspace_id AND v.broadcast_id = 'double-opt-in' AND v.variation = 0
	   AND v.snippets IS DISTINCT FROM s.snippets;
	RETURN integ;
END
$$;

REVOKE ALL ON FUNCTION broadcast._optin_broadcast(text, text) FROM PUBLIC;
