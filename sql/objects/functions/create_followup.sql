/*
 * A draft broadcast to the recipients of a completed broadcast who did not
 * open (or click) it, through the same integration and exclusions, with a
 * new template.  A subject adds a version of that template with the new
 * subject.  The audience is evaluated when the follow-up expands (schedule it
 * with schedule_broadcast): whoever opened until then is left out.
 */
CREATE OR REPLACE FUNCTION broadcast.create_followup(workspace_id text, broadcast_id text, new_broadcast_id text,
										  template_id text, subject text DEFAULT NULL,
										  condition text DEFAULT 'not_opened', name text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	src broadcast.broadcasts;
	t broadcast.templates;
BEGIN
	PERFORM broadcast._authorize_caller(create_followup.workspace_id);
	src := broadcast._get_broadcast(create_followup.workspace_id, create_followup.broadcast_id, false);
	IF src.status <> 'completed' THEN
		PERFORM broadcast._state_error(src, 'follow up', 'completed');
	END IF;
	IF create_followup.condition IS NULL OR create_followup.condition NOT IN ('not_opened', 'not_clicked') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid follow-up condition %s', broadcast._show(create_followup.condition)),
			HINT = 'Use "not_opened" or "not_clicked".';
	END IF;
	PERFORM broadcast._check_id('broadcast', create_followup.new_broadcast_id);
	PERFORM broadcast._check_id('template', create_followup.template_id);
	PERFORM broadcast._latest_template_version(create_followup.workspace_id, create_followup.template_id);
	IF EXISTS (SELECT 1 FROM broadcast.broadcasts b
				WHERE b.workspace_id = create_followup.workspace_id
				  AND b.broadcast_id = create_followup.new_broadcast_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('broadcast %s already exists in workspace %s',
							 quote_literal(create_followup.new_broadcast_id), quote_literal(create_followup.workspace_id));
	END IF;
	IF create_followup.name IS NOT NULL AND (btrim(create_followup.name) = '' OR length(create_followup.name) > 200) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must be 1 to 200 characters';
	END IF;
	IF create_followup.subject IS NOT NULL THEN
		SELECT * INTO t FROM broadcast.templates x
		 WHERE x.workspace_id = create_followup.workspace_id AND x.template_id = create_followup.template_id
		 ORDER BY x.version DESC LIMIT 1;
		PERFORM broadcast.create_template(create_followup.workspace_id, create_followup.template_id,
			create_followup.subject, t.html, t.text_body, t.from_email, t.from_name, t.reply_to);
	END IF;
	INSERT INTO broadcast.broadcasts
		(workspace_id, broadcast_id, name, lists, exclude_lists, integration_id, template_id,
		 followup_of, followup_condition)
	VALUES (create_followup.workspace_id, create_followup.new_broadcast_id,
			coalesce(create_followup.name, left(format('%s (%s)', src.name, replace(create_followup.condition, '_', ' ')), 200)),
			'{}', src.exclude_lists, src.integration_id, create_followup.template_id,
			src.broadcast_id, create_followup.condition);
	RETURN create_followup.new_broadcast_id;
END
$$;

COMMENT ON FUNCTION broadcast.create_followup(text, text, text, text, text, text, text) IS
	'Creates a draft broadcast to the recipients of a completed broadcast who did not open (or click) it';
