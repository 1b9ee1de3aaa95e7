CREATE OR REPLACE FUNCTION broadcast.create_integration(workspace_id text, integration_id text, provider text, config jsonb, secret text DEFAULT NULL::text, rate_per_second numeric DEFAULT NULL::numeric) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	/* runs as the owner to store the secret: authorize the session's role explicitly */
	PERFORM broadcast._authorize_caller(create_integration.workspace_id);
	PERFORM broadcast._check_id('integration', create_integration.integration_id);
	PERFORM broadcast._check_integration_config(provider, config, secret);
	IF create_integration.rate_per_second IS NOT NULL AND create_integration.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive',
			HINT = 'Pass NULL for no workspace limit.';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.integrations i
				WHERE i.workspace_id = create_integration.workspace_id
				  AND i.integration_id = create_integration.integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('integration %s already exists in workspace %s',
							 quote_literal(create_integration.integration_id),
							 quote_literal(create_integration.workspace_id));
	END IF;
	INSERT INTO broadcast.integrations (workspace_id, integration_id, provider, config, rate_per_second)
	VALUES (create_integration.workspace_id, create_integration.integration_id, provider, config,
			create_integration.rate_per_second);
	INSERT INTO broadcast.integration_secrets (workspace_id, integration_id, secret)
	VALUES (create_integration.workspace_id, create_integration.integration_id, secret);
	RETURN create_integration.integration_id;
END
$$;
