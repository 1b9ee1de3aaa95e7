/*
 * The edge's /t/ routes: checks a tracking token, records the open or the
 * click (the history through _apply_events, as a provider's event; the
 * per-link row; the machine flags) and returns the link's target, NULL for
 * the pixel.  The target is the one signed in the token: no open redirect.
 * A message unknown here (its history row gone) is redirected all the same,
 * with nothing recorded; so is any request with record false (HEAD).
 */
CREATE OR REPLACE FUNCTION broadcast.track(token text, user_agent text DEFAULT NULL, client_ip text DEFAULT NULL,
								record boolean DEFAULT true,
								OUT url text, OUT recorded boolean, OUT machine_reason text)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	secret bytea;
	ev text;
	idx integer;
	h record;
	others bigint := 0;
	ua text := left(user_agent, 500);
	is_machine boolean;
BEGIN
	recorded := false;
	IF token IS NULL OR token = '' OR length(token) > 8192 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid tracking token';
	END IF;
	BEGIN
		t := broadcast._unsub_token_parse(token);
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid tracking token',
			DETAIL = 'The token is malformed.';
	END;
	SELECT s.unsubscribe_secret INTO secret FROM broadcast.workspace_secrets s
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._signed_token_verify('track', token, secret)
	   OR t.message_id !~ '^[0-9a-f-]{36}$' OR NOT (t.list_id = 'o' OR t.list_id ~ '^[0-9]{1,4}$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid tracking token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;
	IF t.list_id = 'o' THEN
		ev := 'opened';
		idx := -1;
	ELSE
		ev := 'clicked';
		idx := t.list_id::integer;
		url := t.email;
	END IF;

	SELECT x.broadcast_id, x.integration_id, coalesce(x.delivered_at, x.sent_at) AS sent_at INTO h
	  FROM broadcast.message_history x
	 WHERE x.workspace_id = t.workspace_id AND x.message_id = t.message_id::uuid;
	IF NOT FOUND OR h.integration_id IS NULL OR record IS NOT TRUE THEN
		RETURN;
	END IF;
	IF ev = 'clicked' THEN
		SELECT count(DISTINCT e.link_index) INTO others FROM broadcast.tracked_events e
		 WHERE e.workspace_id = t.workspace_id AND e.message_id = t.message_id::uuid
		   AND e.event = 'clicked' AND e.link_index <> idx AND e.last_at > now() - interval '2 seconds';
	END IF;
	machine_reason := broadcast._machine_reason(ev, ua, broadcast._inet_or_null(client_ip), h.sent_at, others);
	is_machine := machine_reason IS NOT NULL;

	INSERT INTO broadcast.tracked_events AS e (workspace_id, message_id, broadcast_id, event, link_index, url,
											   machine, machine_reason)
	VALUES (t.workspace_id, t.message_id::uuid, h.broadcast_id, ev, idx, url, is_machine, machine_reason)
	ON CONFLICT ON CONSTRAINT tracked_events_pkey DO UPDATE
		SET hits = least(e.hits, 1000000000) + 1, last_at = now();

	/* the providers' path: idempotent, the earliest time wins */
	PERFORM broadcast._apply_events(t.workspace_id, h.integration_id,
		ARRAY[ROW(t.message_id::uuid, NULL, NULL, ev, now(), NULL, url)::broadcast.delivery_event]);

	IF ev = 'opened' THEN
		UPDATE broadcast.message_history x
		   SET open_machine = CASE WHEN is_machine THEN coalesce(x.open_machine, true) ELSE false END
		 WHERE x.workspace_id = t.workspace_id AND x.message_id = t.message_id::uuid
		   AND x.open_machine IS DISTINCT FROM (CASE WHEN is_machine THEN coalesce(x.open_machine, true) ELSE false END);
	ELSE
		UPDATE broadcast.message_history x
		   SET click_machine = CASE WHEN is_machine THEN coalesce(x.click_machine, true) ELSE false END
		 WHERE x.workspace_id = t.workspace_id AND x.message_id = t.message_id::uuid
		   AND x.click_machine IS DISTINCT FROM (CASE WHEN is_machine THEN coalesce(x.click_machine, true) ELSE false END);
	END IF;
	recorded := true;
END
$$;

REVOKE ALL ON FUNCTION broadcast.track(text, text, text, boolean) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.track(text, text, text, boolean) TO broadcast_edge, broadcast_admin;

COMMENT ON FUNCTION broadcast.track(text, text, text, boolean) IS
	'Records a first-party open or click from its /t/ token and returns the link''s signed target';
