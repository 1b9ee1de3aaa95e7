/*
 * An integration's config and secret: the provider is known, the config is
 * a JSON object, its keys and values are what the provider's
 * _check_config_<provider>() allows (one file per provider, beside its
 * C code and webhook normaliser), and the secret is there when the
 * provider needs one.
 */
CREATE OR REPLACE FUNCTION broadcast._check_integration_config(provider text, config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF provider IS NULL OR provider NOT IN ('smtp', 'sendgrid', 'mailgun', 'postmark', 'ses',
											 'sparkpost', 'mailjet', 'resend') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown provider %s', coalesce(quote_literal(provider), 'NULL')),
			HINT = 'Providers: smtp, sendgrid, mailgun, postmark, ses, sparkpost, mailjet, resend.';
	END IF;
	IF config IS NULL OR jsonb_typeof(config) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration config must be a JSON object';
	END IF;

	/* each provider's keys and values, in its own function */
	CASE provider
		WHEN 'smtp' THEN PERFORM broadcast._check_config_smtp(config, secret);
		WHEN 'sendgrid' THEN PERFORM broadcast._check_config_sendgrid(config, secret);
		WHEN 'mailgun' THEN PERFORM broadcast._check_config_mailgun(config, secret);
		WHEN 'postmark' THEN PERFORM broadcast._check_config_postmark(config, secret);
		WHEN 'ses' THEN PERFORM broadcast._check_config_ses(config, secret);
		WHEN 'sparkpost' THEN PERFORM broadcast._check_config_sparkpost(config, secret);
		WHEN 'mailjet' THEN PERFORM broadcast._check_config_mailjet(config, secret);
		WHEN 'resend' THEN PERFORM broadcast._check_config_resend(config, secret);
	END CASE;

	/* an SMTP password is optional: _check_config_smtp() wants one with a username */
	IF provider <> 'smtp' AND (secret IS NULL OR secret = '') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s integration requires a secret', provider),
			HINT = CASE provider
				WHEN 'ses' THEN 'Pass the AWS secret access key (or a JSON object {"secret_access_key": ..., "session_token": ...}).'
				WHEN 'mailjet' THEN 'Pass the Mailjet API secret key; the public key goes in config.api_key.'
				ELSE 'Pass the provider''s API key as the secret argument.' END;
	END IF;
	IF secret ~ '[\x00-\x1f\x7f]' AND provider <> 'ses' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration secret must not contain control characters';
	END IF;
END
$$;
