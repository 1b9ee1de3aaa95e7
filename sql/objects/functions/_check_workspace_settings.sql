/* from 40_events_input.sql: double_opt_in and tracking added (checked by _check_engagement_settings) */
CREATE OR REPLACE FUNCTION broadcast._check_workspace_settings(settings jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	v text;
	n numeric;
	bad_key text;
	page jsonb;
	lim integer;
BEGIN
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace settings must be a JSON object';
	END IF;
	FOR k IN SELECT x FROM jsonb_object_keys(settings) x ORDER BY 1 LOOP
		IF k NOT IN ('sending_domain', 'unsubscribe_base_url', 'unsubscribe_mailto',
					 'default_from_email', 'default_from_name', 'soft_bounce_threshold',
					 'unsubscribe_page', 'double_opt_in', 'tracking', 'history_retention') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown workspace setting %s', quote_literal(k)),
				HINT = 'Known settings: sending_domain, unsubscribe_base_url, unsubscribe_mailto, default_from_email, default_from_name, soft_bounce_threshold, unsubscribe_page, double_opt_in, tracking, history_retention.';
		END IF;
		IF k NOT IN ('soft_bounce_threshold', 'unsubscribe_page', 'double_opt_in', 'tracking', 'history_retention')
		   AND jsonb_typeof(settings->k) <> 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('workspace setting %s must be a string', k),
				DETAIL = format('The value was %s.', settings->k);
		END IF;
	END LOOP;

	v := settings->>'unsubscribe_base_url';
	IF v IS NOT NULL AND (length(v) > 500
			OR v !~ '^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&''()*+;=:@%/?-]*)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_base_url must be an http or https URL of at most 500 characters, without spaces, control characters or any of <>",\{}|^`#',
			DETAIL = format('The value was %s.', broadcast._show(v)),
			HINT = 'For example "https://example.com/unsubscribe"; the signed token is appended after a "/".';
	END IF;

	v := settings->>'unsubscribe_mailto';
	IF v IS NOT NULL AND NOT broadcast.is_valid_email(v)
	   AND (length(v) > 500 OR v !~* '^mailto:[A-Za-z0-9.!#$%&''*+/=~_-]+@[A-Za-z0-9.-]+(\?[A-Za-z0-9._~!$&''()*+;=:@%/?-]*)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_mailto must be an email address or a mailto: URL',
			DETAIL = format('The value was %s.', broadcast._show(v)),
			HINT = 'For example "unsubscribe@example.com" or "mailto:unsubscribe@example.com?subject=unsubscribe", without spaces or line breaks.';
	END IF;

	IF settings ? 'soft_bounce_threshold' THEN
		IF jsonb_typeof(settings->'soft_bounce_threshold') <> 'number'
		   OR (settings->>'soft_bounce_threshold') !~ '^[0-9]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'soft_bounce_threshold must be an integer between 1 and 1000',
				DETAIL = format('The value was %s.', left(settings->>'soft_bounce_threshold', 100));
		END IF;
		n := (settings->>'soft_bounce_threshold')::numeric;
		IF n NOT BETWEEN 1 AND 1000 THEN
			RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
				MESSAGE = 'soft_bounce_threshold must be an integer between 1 and 1000',
				DETAIL = format('The value was %s.', left(settings->>'soft_bounce_threshold', 100));
		END IF;
	END IF;

	/* months of message history kept (maintain_history); 0 = forever */
	IF settings ? 'history_retention' THEN
		IF jsonb_typeof(settings->'history_retention') <> 'number'
		   OR (settings->>'history_retention') !~ '^[0-9]{1,4}$'
		   OR (settings->>'history_retention')::integer > 1200 THEN
			RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
				MESSAGE = 'history_retention must be an integer number of months between 0 and 1200',
				DETAIL = format('The value was %s.', left(settings->>'history_retention', 100)),
				HINT = '0 keeps the history forever.';
		END IF;
	END IF;

	/* the edge's unsubscribe page: plain texts, HTML-escaped when shown */
	IF settings ? 'unsubscribe_page' THEN
		page := settings->'unsubscribe_page';
		IF jsonb_typeof(page) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'unsubscribe_page must be a JSON object',
				HINT = 'Its keys are title, text, button and done, each a string.';
		END IF;
		SELECT pk INTO bad_key FROM jsonb_object_keys(page) pk
		 WHERE pk NOT IN ('title', 'text', 'button', 'done')
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown unsubscribe_page key %s', quote_literal(bad_key)),
				HINT = 'Its keys are title, text, button and done, each a string.';
		END IF;
		SELECT e.pk INTO bad_key FROM jsonb_each(page) e(pk, pv)
		 WHERE jsonb_typeof(e.pv) <> 'string' OR btrim(e.pv #>> '{}') = ''
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unsubscribe_page.%s must be a non-empty string', bad_key);
		END IF;
		SELECT e.pk, CASE e.pk WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
		  INTO bad_key, lim
		  FROM jsonb_each_text(page) e(pk, pv)
		 WHERE length(e.pv) > CASE e.pk WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unsubscribe_page.%s is too long', bad_key),
				DETAIL = format('It may have at most %s characters.', lim);
		END IF;
	END IF;

	PERFORM broadcast._check_engagement_settings(settings);
END
$$;
