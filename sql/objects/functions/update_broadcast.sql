CREATE OR REPLACE FUNCTION broadcast.update_broadcast(
	workspace_id text,
	broadcast_id text,
	name text DEFAULT NULL,
	lists text[] DEFAULT NULL,
	integration_id text DEFAULT NULL,
	template_id text DEFAULT NULL,
	variations text[] DEFAULT NULL,
	ab_sample_percent integer DEFAULT NULL,
	ab_metric text DEFAULT NULL,
	ab_duration interval DEFAULT NULL,
	ab_auto boolean DEFAULT NULL,
	exclude_lists text[] DEFAULT NULL,
	segments text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	content_changed boolean;
BEGIN
	PERFORM broadcast._authorize_caller(update_broadcast.workspace_id);
	b := broadcast._get_broadcast(update_broadcast.workspace_id, update_broadcast.broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled', 'paused') THEN
		PERFORM broadcast._state_error(b, 'update', 'draft, scheduled or paused');
	END IF;
	IF update_broadcast.name IS NOT NULL AND btrim(update_broadcast.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must not be empty';
	END IF;
	content_changed := update_broadcast.lists IS NOT NULL OR update_broadcast.exclude_lists IS NOT NULL
		OR update_broadcast.template_id IS NOT NULL OR update_broadcast.variations IS NOT NULL
		OR update_broadcast.ab_sample_percent IS NOT NULL OR update_broadcast.ab_metric IS NOT NULL
		OR update_broadcast.ab_duration IS NOT NULL OR update_broadcast.ab_auto IS NOT NULL
		OR update_broadcast.segments IS NOT NULL;
	/* once sending has started, only the name and the integration may change */
	IF content_changed AND b.status = 'paused' AND b.paused_from <> 'scheduled' THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('cannot change the audience or content of broadcast %s after sending started',
							 quote_literal(b.broadcast_id)),
			HINT = 'Cancel it and create a new broadcast instead.';
	END IF;

	b.name := coalesce(update_broadcast.name, b.name);
	IF update_broadcast.lists IS NOT NULL THEN
		b.lists := ARRAY(SELECT DISTINCT l FROM unnest(update_broadcast.lists) l ORDER BY 1);
	END IF;
	IF update_broadcast.segments IS NOT NULL THEN
		PERFORM broadcast._check_broadcast_audience(b.workspace_id, '{}', update_broadcast.segments, true);
		b.segments := ARRAY(SELECT DISTINCT s FROM unnest(update_broadcast.segments) s ORDER BY 1);
	END IF;
	PERFORM broadcast._check_broadcast_audience(b.workspace_id, b.lists, b.segments, b.followup_of IS NOT NULL);
	b.exclude_lists := coalesce(update_broadcast.exclude_lists, b.exclude_lists);
	b.integration_id := coalesce(update_broadcast.integration_id, b.integration_id);
	IF update_broadcast.template_id IS NOT NULL THEN
		b.template_id := update_broadcast.template_id;
		b.variations := NULL;
		b.ab_sample_percent := NULL;
	ELSIF update_broadcast.variations IS NOT NULL THEN
		b.variations := update_broadcast.variations;
		b.template_id := NULL;
	END IF;
	b.ab_sample_percent := coalesce(update_broadcast.ab_sample_percent, b.ab_sample_percent);
	b.ab_metric := coalesce(update_broadcast.ab_metric, b.ab_metric);
	b.ab_duration := coalesce(update_broadcast.ab_duration, b.ab_duration);
	b.ab_auto := coalesce(update_broadcast.ab_auto, b.ab_auto);
	PERFORM broadcast._check_broadcast_settings(b.workspace_id, b.lists, b.exclude_lists, b.integration_id,
		b.template_id, b.variations, b.ab_sample_percent, b.ab_metric, b.ab_duration);

	UPDATE broadcast.broadcasts x SET
		name = b.name, lists = b.lists, exclude_lists = b.exclude_lists, integration_id = b.integration_id,
		template_id = b.template_id, variations = b.variations, ab_sample_percent = b.ab_sample_percent,
		ab_metric = b.ab_metric, ab_duration = b.ab_duration, ab_auto = b.ab_auto, segments = b.segments,
		updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	/* a scheduled broadcast sends what was current when it was last changed */
	IF b.status <> 'draft' AND content_changed THEN
		PERFORM broadcast._pin_versions(b.workspace_id, b.broadcast_id);
	END IF;
	RETURN b.broadcast_id;
END
$$;

COMMENT ON FUNCTION broadcast.update_broadcast(text, text, text, text[], text, text, text[], integer, text,
											   interval, boolean, text[], text[]) IS
	'Changes a draft, scheduled or (before sending) paused broadcast; NULL leaves a setting as it is';
