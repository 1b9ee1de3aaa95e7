/*
 * The config of Mailgun: the sending domain and the region's API
 * (docs/providers/mailgun.md).  Called by _check_integration_config();
 * the keys every provider shares are checked by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_mailgun(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('mailgun', config,
									  ARRAY['domain'],
									  ARRAY['endpoint', 'domain', 'region']);
	IF config ? 'region' AND config->>'region' NOT IN ('us', 'eu') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'mailgun region must be "us" or "eu"';
	END IF;
END
$$;
