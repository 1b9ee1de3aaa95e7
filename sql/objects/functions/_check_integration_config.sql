/*
 * An integration's config keys, per provider: which are required and
 * allowed, and the values each may take (the SES topic, an optional key
 * required before SNS messages are accepted; the VERP keys of smtp).
 */
CREATE OR REPLACE FUNCTION broadcast._check_integration_config(provider text, config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	allowed text[];
	required text[];
	k text;
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

	CASE provider
		WHEN 'smtp' THEN
			required := ARRAY['host'];
			allowed := ARRAY['host', 'port', 'tls', 'username', 'ehlo_name', 'ca_file',
							 'bounce_domain', 'bounce_local'];
		WHEN 'sendgrid' THEN
			required := '{}';
			allowed := ARRAY['endpoint'];
		WHEN 'mailgun' THEN
			required := ARRAY['domain'];
			allowed := ARRAY['endpoint', 'domain', 'region'];
		WHEN 'postmark' THEN
			required := '{}';
			allowed := ARRAY['endpoint', 'message_stream'];
		WHEN 'ses' THEN
			required := ARRAY['region', 'access_key_id'];
			allowed := ARRAY['endpoint', 'region', 'access_key_id', 'configuration_set', 'topic_arn'];
		WHEN 'sparkpost' THEN
			required := '{}';
			allowed := ARRAY['endpoint', 'region'];
		WHEN 'mailjet' THEN
			required := ARRAY['api_key'];
			allowed := ARRAY['endpoint', 'api_key'];
		WHEN 'resend' THEN
			required := '{}';
			allowed := ARRAY['endpoint'];
	END CASE;

	/* a CA bundle for providers behind a private certificate authority */
	allowed := allowed || 'ca_file'::text;
	FOREACH k IN ARRAY required LOOP
		IF NOT config ? k OR jsonb_typeof(config->k) <> 'string' OR config->>k = '' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('%s integration config is missing required key %s', provider, quote_literal(k)),
				HINT = format('Required keys for %s: %s.', provider, array_to_string(required, ', '));
		END IF;
	END LOOP;
	SELECT key INTO k FROM jsonb_object_keys(config) key WHERE key <> ALL (allowed) LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown key %s in %s integration config', quote_literal(k), provider),
			HINT = format('Keys for %s: %s.', provider, array_to_string(allowed, ', '));
	END IF;

	IF config ? 'endpoint' AND coalesce(config->>'endpoint', '') !~ '^https?://[A-Za-z0-9.\[\]:-]+(/[^\s]*)?$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration endpoint must be an http or https URL',
			DETAIL = format('The value was %s.', config->'endpoint');
	END IF;
	IF config ? 'region' AND provider IN ('mailgun', 'sparkpost') AND config->>'region' NOT IN ('us', 'eu') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s region must be "us" or "eu"', provider);
	END IF;
	IF provider = 'ses' AND config->>'region' !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid AWS region %s', quote_literal(config->>'region')),
			HINT = 'Use a region code such as "eu-west-1".';
	END IF;
	/* the SNS topic SES publishes this integration's events to: webhooks from others are refused */
	IF provider = 'ses' AND config ? 'topic_arn'
	   AND (jsonb_typeof(config->'topic_arn') <> 'string'
			OR config->>'topic_arn' !~ '^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,255}(\.fifo)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid SNS topic ARN %s', config->'topic_arn'),
			HINT = 'Use the ARN of the topic the configuration set''s event destination publishes to, such as "arn:aws:sns:eu-west-1:123456789012:ses-events".';
	END IF;
	IF provider = 'smtp' THEN
		IF config->>'host' !~ '^[A-Za-z0-9.:\[\]-]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid SMTP host %s', quote_literal(config->>'host'));
		END IF;
		IF config ? 'port' AND (jsonb_typeof(config->'port') <> 'number'
								OR (config->>'port')::numeric NOT BETWEEN 1 AND 65535
								OR (config->>'port')::numeric <> trunc((config->>'port')::numeric)) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SMTP port must be an integer between 1 and 65535';
		END IF;
		IF config ? 'tls' AND coalesce(config->>'tls', '') NOT IN ('starttls', 'implicit', 'none') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid SMTP tls mode %s', config->'tls'),
				HINT = 'Use "starttls" (the default), "implicit" or "none".';
		END IF;
		IF config ? 'username' AND secret IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SMTP username given without a password',
				HINT = 'Pass the password as the secret argument.';
		END IF;
		IF config ? 'ehlo_name' AND config->>'ehlo_name' !~ '^[A-Za-z0-9.-]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid EHLO name %s', config->'ehlo_name');
		END IF;
		/* VERP: <bounce_local>+<42-character token>@<bounce_domain> fits a 64-byte local part */
		IF config ? 'bounce_domain'
		   AND (jsonb_typeof(config->'bounce_domain') <> 'string'
				OR length(config->>'bounce_domain') > 200
				OR config->>'bounce_domain' !~ '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid bounce domain %s', config->'bounce_domain'),
				HINT = 'Use a domain name whose mail reaches the pipe that calls broadcast.record_bounce_message(), such as "bounces.example.com".';
		END IF;
		IF config ? 'bounce_local' AND NOT config ? 'bounce_domain' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'bounce_local given without bounce_domain',
				HINT = 'VERP return paths need both; bounce_local defaults to "bounces".';
		END IF;
		IF config ? 'bounce_local'
		   AND (jsonb_typeof(config->'bounce_local') <> 'string'
				OR config->>'bounce_local' !~ '^[a-z0-9]([a-z0-9._-]{0,18}[a-z0-9])?$'
				OR config->>'bounce_local' ~ '\.\.') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid bounce local part %s', config->'bounce_local'),
				DETAIL = 'It must be 1 to 20 lower-case letters, digits, dots, hyphens or underscores, starting and ending with a letter or digit; the token follows a "+".';
		END IF;
	ELSIF secret IS NULL OR secret = '' THEN
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
