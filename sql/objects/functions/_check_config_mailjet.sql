/*
 * The config of Mailjet: the public API key; the secret key is the secret
 * (docs/providers/mailjet.md).  Called by _check_integration_config(); the
 * keys every provider shares are checked by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_mailjet(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('mailjet', config,
									  ARRAY['api_key'],
									  ARRAY['endpoint', 'api_key']);
END
$$;
