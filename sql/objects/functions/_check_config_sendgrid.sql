/*
 * The config of SendGrid: an endpoint only (docs/providers/sendgrid.md).
 * Called by _check_integration_config(); the keys every provider shares
 * are checked by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_sendgrid(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('sendgrid', config,
									  '{}',
									  ARRAY['endpoint']);
END
$$;
