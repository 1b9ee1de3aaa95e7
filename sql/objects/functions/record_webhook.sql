/* record_webhook: the workspace check comes before the body is looked at */

CREATE OR REPLACE FUNCTION broadcast.record_webhook(workspace_id text, integration_id text, body text, headers jsonb DEFAULT NULL::jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	payload jsonb;
	r record;
BEGIN
	PERFORM broadcast._authorize_webhook(record_webhook.workspace_id);
	IF body IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'body must not be NULL';
	END IF;
	BEGIN
		payload := body::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'webhook body is not valid JSON',
			DETAIL = format('The body starts with %s.', broadcast._show(left(body, 60)));
	END;
	r := broadcast._record(workspace_id, integration_id, payload, body, headers);
	received := r.received; applied := r.applied; changed := r.changed; pending := r.pending;
	unknown := r.unknown; ignored := r.ignored; suppressed := r.suppressed; confirm_url := r.confirm_url;
END
$$;

REVOKE ALL ON FUNCTION broadcast.record_webhook(workspace_id text, integration_id text, body text, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.record_webhook(workspace_id text, integration_id text, body text, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) TO broadcast_webhook;
GRANT ALL ON FUNCTION broadcast.record_webhook(workspace_id text, integration_id text, body text, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) TO broadcast_user;
GRANT ALL ON FUNCTION broadcast.record_webhook(workspace_id text, integration_id text, body text, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) TO broadcast_admin;
