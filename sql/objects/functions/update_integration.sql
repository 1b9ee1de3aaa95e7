/*
 * Changes what is given and keeps the rest: config replaces the whole
 * config, secret the API key or password, rate_per_second this workspace's
 * limit (remove_rate_limit drops it).  The result is checked like a new
 * integration's.  Senders reload an integration at most 10 s after the
 * change (docs/sql-api.md); rates apply at once.
 */

CREATE OR REPLACE FUNCTION broadcast.update_integration(workspace_id text, integration_id text, config jsonb DEFAULT NULL::jsonb, secret text DEFAULT NULL::text, rate_per_second numeric DEFAULT NULL::numeric, remove_rate_limit boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	i broadcast.integrations;
	old_secret text;
BEGIN
	PERFORM broadcast._authorize_caller(update_integration.workspace_id);
	PERFORM broadcast._check_id('integration', update_integration.integration_id);
	IF update_integration.config IS NULL AND update_integration.secret IS NULL
	   AND update_integration.rate_per_second IS NULL AND NOT coalesce(remove_rate_limit, false) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'nothing to update',
			HINT = 'Pass config, secret, rate_per_second or remove_rate_limit => true.';
	END IF;
	IF update_integration.rate_per_second IS NOT NULL AND remove_rate_limit THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second and remove_rate_limit cannot be used together';
	END IF;
	IF update_integration.rate_per_second IS NOT NULL AND update_integration.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive',
			HINT = 'Pass remove_rate_limit => true for no workspace limit.';
	END IF;

	SELECT * INTO i FROM broadcast.integrations x
	 WHERE x.workspace_id = update_integration.workspace_id
	   AND x.integration_id = update_integration.integration_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(update_integration.integration_id),
							 quote_literal(update_integration.workspace_id));
	END IF;
	IF i.shared_id IS NOT NULL AND (update_integration.config IS NOT NULL OR update_integration.secret IS NOT NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('integration %s uses the shared integration %s: its config and secret belong to the platform',
							 quote_literal(i.integration_id), quote_literal(i.shared_id)),
			HINT = 'Only rate_per_second can change here; an administrator changes the shared integration.';
	END IF;
	SELECT s.secret INTO old_secret FROM broadcast.integration_secrets s
	 WHERE s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id;
	IF i.shared_id IS NULL THEN
		PERFORM broadcast._check_integration_config(i.provider, coalesce(update_integration.config, i.config),
													 coalesce(update_integration.secret, old_secret));
	END IF;

	UPDATE broadcast.integrations x
	   SET config = coalesce(update_integration.config, x.config),
		   rate_per_second = CASE WHEN remove_rate_limit THEN NULL
								  ELSE coalesce(update_integration.rate_per_second, x.rate_per_second) END,
		   updated_at = now()
	 WHERE x.workspace_id = i.workspace_id AND x.integration_id = i.integration_id;
	IF update_integration.secret IS NOT NULL THEN
		UPDATE broadcast.integration_secrets s SET secret = update_integration.secret
		 WHERE s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id;
	END IF;
	RETURN i.integration_id;
END
$$;
