/*
 * Replaced from 1.0: the audience check (at least one list or segment) moved
 * to the callers, which know the segments; everything else is as it was.
 */
CREATE OR REPLACE FUNCTION broadcast._check_broadcast_settings(
	p_workspace_id text, p_lists text[], p_exclude_lists text[], p_integration_id text,
	p_template_id text, p_variations text[], p_ab_sample_percent integer, p_ab_metric text,
	p_ab_duration interval)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	l text;
	t text;
BEGIN
	IF p_lists IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'lists must not be NULL';
	END IF;
	FOREACH l IN ARRAY p_lists || coalesce(p_exclude_lists, '{}') LOOP
		PERFORM broadcast._require_list(p_workspace_id, l);
	END LOOP;
	IF NOT EXISTS (SELECT 1 FROM broadcast.integrations i
					WHERE i.workspace_id = p_workspace_id AND i.integration_id = p_integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 coalesce(quote_literal(p_integration_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
	IF (p_template_id IS NULL) = (p_variations IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a broadcast needs either template_id or variations, not both',
			HINT = 'Pass template_id for a plain send, or 2 to 8 template ids in variations for an A/B test.';
	END IF;
	IF p_template_id IS NOT NULL THEN
		PERFORM broadcast._latest_template_version(p_workspace_id, p_template_id);
		IF p_ab_sample_percent IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'ab_sample_percent needs variations',
				HINT = 'Pass 2 to 8 template ids in variations to run an A/B test.';
		END IF;
		RETURN;
	END IF;
	IF cardinality(p_variations) NOT BETWEEN 2 AND 8
	   OR (SELECT count(DISTINCT v) FROM unnest(p_variations) v) <> cardinality(p_variations) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'an A/B test needs 2 to 8 distinct variations',
			DETAIL = format('The variations were: %s.', array_to_string(p_variations, ', ', 'NULL'));
	END IF;
	FOREACH t IN ARRAY p_variations LOOP
		PERFORM broadcast._latest_template_version(p_workspace_id, t);
	END LOOP;
	IF p_ab_sample_percent IS NULL OR p_ab_sample_percent NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('ab_sample_percent must be between 1 and 100, got %s',
							 coalesce(p_ab_sample_percent::text, 'NULL')),
			HINT = 'It is the share of the audience that receives the test variations.';
	END IF;
	IF p_ab_metric IS NULL OR p_ab_metric NOT IN ('open', 'click') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('ab_metric must be "open" or "click", got %s', coalesce(quote_literal(p_ab_metric), 'NULL'));
	END IF;
	IF p_ab_duration IS NOT NULL AND p_ab_duration <= interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'ab_duration must be positive';
	END IF;
END
$$;
