/*
 * The config of SparkPost: the region's API (docs/providers/sparkpost.md).
 * Called by _check_integration_config(); the keys every provider shares
 * are checked by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_sparkpost(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('sparkpost', config,
									  '{}',
									  ARRAY['endpoint', 'region']);
	IF config ? 'region' AND config->>'region' NOT IN ('us', 'eu') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'sparkpost region must be "us" or "eu"';
	END IF;
END
$$;
