CREATE OR REPLACE FUNCTION broadcast.create_shared_integration(shared_id text, provider text, config jsonb, secret text DEFAULT NULL::text, rate_per_second numeric DEFAULT NULL::numeric) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._require_admin('create a shared integration');
	PERFORM broadcast._check_id('shared integration', shared_id);
	PERFORM broadcast._check_integration_config(provider, config, secret);
	IF rate_per_second IS NOT NULL AND rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.shared_integrations s WHERE s.shared_id = create_shared_integration.shared_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('shared integration %s already exists', quote_literal(shared_id));
	END IF;
	INSERT INTO broadcast.shared_integrations (shared_id, provider, config, secret, rate_per_second)
	VALUES (shared_id, provider, config, secret, rate_per_second);
	RETURN shared_id;
END
$$;
