CREATE OR REPLACE FUNCTION broadcast.create_broadcast(
	workspace_id text,
	broadcast_id text,
	name text,
	lists text[],
	integration_id text,
	template_id text DEFAULT NULL,
	variations text[] DEFAULT NULL,
	ab_sample_percent integer DEFAULT NULL,
	ab_metric text DEFAULT 'open',
	ab_duration interval DEFAULT NULL,
	ab_auto boolean DEFAULT true,
	exclude_lists text[] DEFAULT '{}',
	segments text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(create_broadcast.workspace_id);
	PERFORM broadcast._check_id('broadcast', create_broadcast.broadcast_id);
	IF create_broadcast.name IS NULL OR btrim(create_broadcast.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must not be empty';
	END IF;
	PERFORM broadcast._check_broadcast_audience(create_broadcast.workspace_id, create_broadcast.lists,
		create_broadcast.segments, false);
	PERFORM broadcast._check_broadcast_settings(create_broadcast.workspace_id,
		coalesce(create_broadcast.lists, '{}'),
		create_broadcast.exclude_lists, create_broadcast.integration_id, create_broadcast.template_id,
		create_broadcast.variations, create_broadcast.ab_sample_percent, create_broadcast.ab_metric,
		create_broadcast.ab_duration);
	IF create_broadcast.ab_auto IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'ab_auto must not be NULL';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.broadcasts b
				WHERE b.workspace_id = create_broadcast.workspace_id
				  AND b.broadcast_id = create_broadcast.broadcast_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('broadcast %s already exists in workspace %s',
							 quote_literal(create_broadcast.broadcast_id), quote_literal(create_broadcast.workspace_id));
	END IF;

	INSERT INTO broadcast.broadcasts
		(workspace_id, broadcast_id, name, lists, exclude_lists, integration_id, template_id,
		 variations, ab_sample_percent, ab_metric, ab_duration, ab_auto, segments)
	VALUES (create_broadcast.workspace_id, create_broadcast.broadcast_id, create_broadcast.name,
			ARRAY(SELECT DISTINCT l FROM unnest(create_broadcast.lists) l ORDER BY 1),
			coalesce(create_broadcast.exclude_lists, '{}'), create_broadcast.integration_id,
			create_broadcast.template_id, create_broadcast.variations, create_broadcast.ab_sample_percent,
			create_broadcast.ab_metric, coalesce(create_broadcast.ab_duration, interval '1 day'),
			create_broadcast.ab_auto,
			ARRAY(SELECT DISTINCT s FROM unnest(create_broadcast.segments) s ORDER BY 1));
	RETURN create_broadcast.broadcast_id;
END
$$;

COMMENT ON FUNCTION broadcast.create_broadcast(text, text, text, text[], text, text, text[], integer, text,
											   interval, boolean, text[], text[]) IS
	'Creates a draft broadcast to lists and segments (union), minus exclude_lists and suppressions';
