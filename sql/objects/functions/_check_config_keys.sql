/*
 * The keys of an integration's config: the required ones present as
 * non-empty strings, no unknown one (ca_file, a CA bundle for providers
 * behind a private certificate authority, is allowed for all), and an
 * endpoint that is an http or https URL.  Each provider's
 * _check_config_<provider>() calls it with its own lists.
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_keys(provider text, config jsonb,
														required text[], allowed text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
BEGIN
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
END
$$;
