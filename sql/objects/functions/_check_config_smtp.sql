/*
 * The config of an SMTP relay: host, port, TLS mode, login, EHLO name, and
 * the VERP return path of bounces (bounce_domain, bounce_local;
 * docs/providers/smtp.md).  Called by _check_integration_config(); the
 * keys every provider shares are checked by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_smtp(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('smtp', config,
									  ARRAY['host'],
									  ARRAY['host', 'port', 'tls', 'username', 'ehlo_name', 'ca_file',
									   'bounce_domain', 'bounce_local']);
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
END
$$;
