/* the consent rows a confirmation token names, after checking it; raises 22023 */
CREATE OR REPLACE FUNCTION broadcast._confirm_token(token text, OUT workspace_id text, OUT email text,
										 OUT list_id text, OUT message_id uuid, OUT page jsonb,
										 OUT expires interval)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	secret bytea;
	o jsonb;
BEGIN
	IF token IS NULL OR token = '' OR length(token) > 8192 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid confirmation token';
	END IF;
	BEGIN
		t := broadcast._unsub_token_parse(token);
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid confirmation token',
			DETAIL = 'The token is malformed.';
	END;
	SELECT s.unsubscribe_secret, w.settings->'double_opt_in' INTO secret, o
	  FROM broadcast.workspace_secrets s JOIN broadcast.workspaces w USING (workspace_id)
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._signed_token_verify('confirm', token, secret)
	   OR t.message_id !~ '^[0-9a-f-]{36}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid confirmation token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;
	workspace_id := t.workspace_id;
	email := t.email;
	list_id := t.list_id;
	message_id := t.message_id::uuid;
	page := coalesce(o->'page', '{}');
	expires := make_interval(hours => coalesce((o->>'expires_hours')::integer, 72));
END
$$;

REVOKE ALL ON FUNCTION broadcast._confirm_token(text) FROM PUBLIC;
