/*
 * The one-click unsubscribe URL for an address: the workspace's
 * unsubscribe_base_url followed by a signed token.  NULL when the workspace
 * has no base URL.  Runs as the owner to read the workspace's secret.
 */

CREATE OR REPLACE FUNCTION broadcast.unsubscribe_url(workspace_id text, email text, list_id text DEFAULT NULL::text, message_id uuid DEFAULT NULL::uuid) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	base text;
	secret bytea;
BEGIN
	PERFORM broadcast._authorize_caller(unsubscribe_url.workspace_id);
	PERFORM broadcast._check_email(unsubscribe_url.email);
	SELECT w.settings->>'unsubscribe_base_url', s.unsubscribe_secret INTO base, secret
	  FROM broadcast.workspaces w JOIN broadcast.workspace_secrets s USING (workspace_id)
	 WHERE w.workspace_id = unsubscribe_url.workspace_id;
	IF base IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN rtrim(base, '/') || '/' || broadcast._unsub_token_make(secret, unsubscribe_url.workspace_id,
		coalesce(unsubscribe_url.list_id, ''), lower(unsubscribe_url.email),
		coalesce(unsubscribe_url.message_id::text, ''));
END
$$;
