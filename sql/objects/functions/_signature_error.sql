/* ------------------------------------------------------------------------
 * Webhook signatures
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast._signature_error(provider text, detail text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'invalid_authorization_specification',
		MESSAGE = format('%s webhook signature verification failed', provider),
		DETAIL = detail,
		HINT = 'Check that the signing key stored with broadcast.set_webhook_secret() is the one the provider uses, and pass the payload exactly as received.';
END
$$;
