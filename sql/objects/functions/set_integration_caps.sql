/*
 * Sets (or, with NULL, removes) an integration's hourly cap, daily cap and
 * warm-up schedule, all three at once.
 */
CREATE OR REPLACE FUNCTION broadcast.set_integration_caps(
	workspace_id text,
	integration_id text,
	hourly_cap integer DEFAULT NULL,
	daily_cap integer DEFAULT NULL,
	warmup jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	w jsonb;
BEGIN
	PERFORM broadcast._authorize_caller(set_integration_caps.workspace_id);
	PERFORM broadcast._check_id('integration', set_integration_caps.integration_id);
	IF set_integration_caps.hourly_cap IS NOT NULL
	   AND set_integration_caps.hourly_cap NOT BETWEEN 1 AND 100000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('hourly_cap must be between 1 and 100000000, got %s', set_integration_caps.hourly_cap),
			HINT = 'Pass NULL for no hourly cap.';
	END IF;
	IF set_integration_caps.daily_cap IS NOT NULL
	   AND set_integration_caps.daily_cap NOT BETWEEN 1 AND 1000000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('daily_cap must be between 1 and 1000000000, got %s', set_integration_caps.daily_cap),
			HINT = 'Pass NULL for no daily cap.';
	END IF;
	w := broadcast._check_warmup(set_integration_caps.warmup);
	UPDATE broadcast.integrations i
	   SET hourly_cap = set_integration_caps.hourly_cap, daily_cap = set_integration_caps.daily_cap,
		   warmup = w, updated_at = now()
	 WHERE i.workspace_id = set_integration_caps.workspace_id
	   AND i.integration_id = set_integration_caps.integration_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(set_integration_caps.integration_id),
							 quote_literal(set_integration_caps.workspace_id));
	END IF;
	/* a raised cap lets waiting mail go now */
	PERFORM broadcast._wake_senders();
	RETURN set_integration_caps.integration_id;
END
$$;

REVOKE ALL ON FUNCTION broadcast.set_integration_caps(text, text, integer, integer, jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.set_integration_caps(text, text, integer, integer, jsonb)
	TO broadcast_user, broadcast_admin;

COMMENT ON FUNCTION broadcast.set_integration_caps(text, text, integer, integer, jsonb) IS
	'Sets an integration''s hourly cap, daily cap and warm-up schedule (NULL: none)';
