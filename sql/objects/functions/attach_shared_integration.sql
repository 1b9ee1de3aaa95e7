/* lets a workspace send through a platform account, under its own share of the limit */

CREATE OR REPLACE FUNCTION broadcast.attach_shared_integration(workspace_id text, integration_id text, shared_id text, rate_per_second numeric DEFAULT NULL::numeric) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	s broadcast.shared_integrations;
BEGIN
	PERFORM broadcast._require_admin('attach a shared integration');
	PERFORM broadcast._authorize(attach_shared_integration.workspace_id);
	PERFORM broadcast._check_id('integration', attach_shared_integration.integration_id);
	SELECT * INTO s FROM broadcast.shared_integrations x WHERE x.shared_id = attach_shared_integration.shared_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('shared integration %s does not exist',
							 coalesce(quote_literal(attach_shared_integration.shared_id), 'NULL'));
	END IF;
	IF attach_shared_integration.rate_per_second IS NOT NULL AND attach_shared_integration.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.integrations i
				WHERE i.workspace_id = attach_shared_integration.workspace_id
				  AND i.integration_id = attach_shared_integration.integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('integration %s already exists in workspace %s',
							 quote_literal(attach_shared_integration.integration_id),
							 quote_literal(attach_shared_integration.workspace_id));
	END IF;
	INSERT INTO broadcast.integrations (workspace_id, integration_id, provider, config, rate_per_second, shared_id)
	VALUES (attach_shared_integration.workspace_id, attach_shared_integration.integration_id,
			s.provider, '{}', attach_shared_integration.rate_per_second, s.shared_id);
	RETURN attach_shared_integration.integration_id;
END
$$;
