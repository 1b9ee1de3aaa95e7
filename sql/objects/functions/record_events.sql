CREATE OR REPLACE FUNCTION broadcast.record_events(workspace_id text, integration_id text, payload jsonb, headers jsonb DEFAULT NULL::jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) RETURNS record
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT * FROM broadcast._record(workspace_id, integration_id, payload, NULL, headers)
$$;

COMMENT ON FUNCTION broadcast.record_events(workspace_id text, integration_id text, payload jsonb, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) IS 'Applies a provider''s webhook payload (or the generic form) to message_history and suppressions';

REVOKE ALL ON FUNCTION broadcast.record_events(workspace_id text, integration_id text, payload jsonb, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.record_events(workspace_id text, integration_id text, payload jsonb, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) TO broadcast_webhook;
GRANT ALL ON FUNCTION broadcast.record_events(workspace_id text, integration_id text, payload jsonb, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) TO broadcast_user;
GRANT ALL ON FUNCTION broadcast.record_events(workspace_id text, integration_id text, payload jsonb, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) TO broadcast_admin;
