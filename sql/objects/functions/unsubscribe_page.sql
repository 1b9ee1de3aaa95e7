/*
 * The texts of the unsubscribe page for a token (the workspace's
 * unsubscribe_page setting, '{}' when unset), after checking the token as
 * unsubscribe() does.  Changes nothing: a GET of the link only shows this.
 */

CREATE OR REPLACE FUNCTION broadcast.unsubscribe_page(token text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	t record;
	secret bytea;
	page jsonb;
BEGIN
	IF token IS NULL OR token = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token is empty.';
	END IF;
	t := broadcast._unsub_token_parse(token);
	SELECT s.unsubscribe_secret, coalesce(w.settings->'unsubscribe_page', '{}')
	  INTO secret, page
	  FROM broadcast.workspace_secrets s JOIN broadcast.workspaces w USING (workspace_id)
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._unsub_token_verify(token, secret) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;
	RETURN page;
END
$$;

REVOKE ALL ON FUNCTION broadcast.unsubscribe_page(token text) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.unsubscribe_page(token text) TO broadcast_edge;
GRANT ALL ON FUNCTION broadcast.unsubscribe_page(token text) TO broadcast_webhook;
