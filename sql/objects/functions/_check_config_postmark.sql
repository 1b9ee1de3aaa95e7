/*
 * The config of Postmark: the message stream (docs/providers/postmark.md).
 * Called by _check_integration_config(); the keys every provider shares
 * are checked by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_postmark(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('postmark', config,
									  '{}',
									  ARRAY['endpoint', 'message_stream']);
END
$$;
