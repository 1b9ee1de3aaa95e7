/*
 * double_opt_in: {"template_id", "integration_id", "base_url" (the edge's
 * /c), "expires_hours" (1 to 720, default 72), "page": {"title", "text",
 * "button", "done"}}; tracking: {"enabled", "base_url" (the edge's /t)}.
 */
CREATE OR REPLACE FUNCTION broadcast._check_engagement_settings(settings jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o jsonb;
	bad text;
BEGIN
	IF settings ? 'double_opt_in' THEN
		o := settings->'double_opt_in';
		IF jsonb_typeof(o) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in must be a JSON object',
				HINT = 'Its keys are template_id, integration_id, base_url, expires_hours and page.';
		END IF;
		SELECT k INTO bad FROM jsonb_object_keys(o) k
		 WHERE k NOT IN ('template_id', 'integration_id', 'base_url', 'expires_hours', 'page') LIMIT 1;
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown double_opt_in key %s', quote_literal(bad)),
				HINT = 'Its keys are template_id, integration_id, base_url, expires_hours and page.';
		END IF;
		IF jsonb_typeof(o->'template_id') IS DISTINCT FROM 'string' OR NOT broadcast.is_valid_id(o->>'template_id')
		   OR jsonb_typeof(o->'integration_id') IS DISTINCT FROM 'string' OR NOT broadcast.is_valid_id(o->>'integration_id') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in needs a template_id and an integration_id',
				HINT = 'The template is sent as the confirmation message; its {{confirm_url}} is the link to confirm.';
		END IF;
		IF jsonb_typeof(o->'base_url') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in.base_url must be a string',
				HINT = 'The address of the edge''s /c route, for example "https://mail.example.com/c".';
		END IF;
		PERFORM broadcast._check_base_url('double_opt_in.base_url', o->>'base_url');
		IF o ? 'expires_hours' AND (jsonb_typeof(o->'expires_hours') <> 'number'
				OR (o->>'expires_hours') !~ '^[0-9]{1,4}$' OR (o->>'expires_hours')::integer NOT BETWEEN 1 AND 720) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in.expires_hours must be an integer between 1 and 720',
				DETAIL = format('The value was %s.', left(o->>'expires_hours', 100));
		END IF;
		IF o ? 'page' THEN
			IF jsonb_typeof(o->'page') <> 'object' THEN
				RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
					MESSAGE = 'double_opt_in.page must be a JSON object',
					HINT = 'Its keys are title, text, button and done, each a string.';
			END IF;
			SELECT e.k INTO bad FROM jsonb_each(o->'page') e(k, v)
			 WHERE e.k NOT IN ('title', 'text', 'button', 'done') OR jsonb_typeof(e.v) <> 'string'
				OR btrim(e.v #>> '{}') = ''
				OR length(e.v #>> '{}') > CASE e.k WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
			 LIMIT 1;
			IF bad IS NOT NULL THEN
				RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
					MESSAGE = format('invalid double_opt_in.page key %s', quote_literal(bad)),
					HINT = 'Its keys are title (up to 200 characters), text, done (2000) and button (100), each a non-empty string.';
			END IF;
		END IF;
	END IF;

	IF settings ? 'tracking' THEN
		o := settings->'tracking';
		IF jsonb_typeof(o) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'tracking must be a JSON object',
				HINT = 'Its keys are enabled (a boolean) and base_url.';
		END IF;
		SELECT k INTO bad FROM jsonb_object_keys(o) k WHERE k NOT IN ('enabled', 'base_url') LIMIT 1;
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown tracking key %s', quote_literal(bad)),
				HINT = 'Its keys are enabled (a boolean) and base_url.';
		END IF;
		IF o ? 'enabled' AND jsonb_typeof(o->'enabled') <> 'boolean' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'tracking.enabled must be true or false';
		END IF;
		IF jsonb_typeof(o->'base_url') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'tracking.base_url must be a string',
				HINT = 'The address of the edge''s /t route, for example "https://mail.example.com/t".';
		END IF;
		PERFORM broadcast._check_base_url('tracking.base_url', o->>'base_url');
	END IF;
END
$$;
