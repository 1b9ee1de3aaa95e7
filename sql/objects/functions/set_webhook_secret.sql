/* SendGrid's key is the signed Event Webhook's public key */
CREATE OR REPLACE FUNCTION broadcast.set_webhook_secret(workspace_id text, integration_id text, secret text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	prov text;
BEGIN
	PERFORM broadcast._authorize_caller(set_webhook_secret.workspace_id);
	PERFORM broadcast._check_id('integration', set_webhook_secret.integration_id);
	SELECT i.provider INTO prov FROM broadcast.integrations i
	 WHERE i.workspace_id = set_webhook_secret.workspace_id
	   AND i.integration_id = set_webhook_secret.integration_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(set_webhook_secret.integration_id),
							 quote_literal(set_webhook_secret.workspace_id));
	END IF;
	IF prov NOT IN ('mailgun', 'resend', 'ses', 'sendgrid') THEN
		RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
			MESSAGE = format('%s webhooks carry no signature this engine verifies', prov),
			HINT = 'Authenticate the webhook endpoint in the web front (for example with HTTP Basic credentials in the webhook URL); see docs/events.md.';
	END IF;
	IF secret IS NOT NULL THEN
		IF prov = 'mailgun' AND (btrim(secret) = '' OR secret ~ '[\x00-\x20\x7f]') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'invalid Mailgun webhook signing key',
				HINT = 'Copy the "HTTP webhook signing key" from the Mailgun dashboard.';
		ELSIF prov = 'resend' AND (secret !~ '^whsec_[A-Za-z0-9+/]+={0,2}$' OR length(secret) % 4 <> 2) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'invalid Resend webhook signing secret',
				HINT = 'It is "whsec_" followed by base64, as shown on the webhook''s page in Resend.';
		ELSIF prov = 'ses' THEN
			PERFORM broadcast._check_certificate(secret);
		ELSIF prov = 'sendgrid' THEN
			PERFORM broadcast._check_ec_public_key(secret);
		END IF;
	END IF;
	INSERT INTO broadcast.integration_secrets AS s (workspace_id, integration_id, webhook_secret)
	VALUES (set_webhook_secret.workspace_id, set_webhook_secret.integration_id, secret)
	ON CONFLICT ON CONSTRAINT integration_secrets_pkey DO UPDATE SET webhook_secret = EXCLUDED.webhook_secret;
END
$$;
