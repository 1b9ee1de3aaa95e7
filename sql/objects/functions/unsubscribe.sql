/*
 * The one-click unsubscribe (RFC 8058) behind a web front: verifies the
 * token from the List-Unsubscribe URL in constant time against its
 * workspace's secret, unsubscribes the address from the token's list (or,
 * for a token without a list, from every list and with a suppression),
 * records unsubscribed_at on the message and drops queued mail.  A second
 * call changes nothing and returns unsubscribed = false.
 */

CREATE OR REPLACE FUNCTION broadcast.unsubscribe(token text, OUT workspace_id text, OUT email text, OUT list_id text, OUT unsubscribed boolean) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	t record;
	secret bytea;
	mid uuid;
	n bigint;
BEGIN
	IF token IS NULL OR token = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token is empty.';
	END IF;
	/* malformed tokens raise here; the fields are not trusted before the MAC check */
	t := broadcast._unsub_token_parse(token);
	SELECT s.unsubscribe_secret INTO secret FROM broadcast.workspace_secrets s
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._unsub_token_verify(token, secret) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;

	workspace_id := t.workspace_id;
	email := t.email;
	list_id := nullif(t.list_id, '');
	mid := broadcast._uuid_or_null(t.message_id);

	/*
	 * The workspace's audience lock, exclusive: the queue rows dropped below
	 * include those of any expansion chunk in flight, and later chunks see
	 * the unsubscribe.  It also serialises concurrent clicks on the address.
	 */
	PERFORM broadcast._lock_audience(workspace_id);
	IF list_id IS NOT NULL THEN
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe.workspace_id AND m.list_id = unsubscribe.list_id
		   AND m.email = unsubscribe.email AND m.status IN ('active', 'pending');
		GET DIAGNOSTICS n = ROW_COUNT;
		DELETE FROM broadcast.email_queue q
		 USING broadcast.broadcasts b
		 WHERE b.workspace_id = unsubscribe.workspace_id
		   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
		   AND q.workspace_id = unsubscribe.workspace_id AND q.broadcast_id = b.broadcast_id
		   AND q.email = unsubscribe.email AND q.list_id = unsubscribe.list_id
		   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now());
	ELSE
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe.workspace_id AND m.email = unsubscribe.email
		   AND m.status IN ('active', 'pending');
		GET DIAGNOSTICS n = ROW_COUNT;
		INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
		VALUES (unsubscribe.workspace_id, unsubscribe.email, 'unsubscribe', 'one-click unsubscribe')
		ON CONFLICT DO NOTHING;
		n := n + CASE WHEN FOUND THEN 1 ELSE 0 END;
		DELETE FROM broadcast.email_queue q
		 USING broadcast.broadcasts b
		 WHERE b.workspace_id = unsubscribe.workspace_id
		   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
		   AND q.workspace_id = unsubscribe.workspace_id AND q.broadcast_id = b.broadcast_id
		   AND q.email = unsubscribe.email
		   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now());
	END IF;
	IF mid IS NOT NULL THEN
		UPDATE broadcast.message_history h SET unsubscribed_at = now()
		 WHERE h.workspace_id = unsubscribe.workspace_id AND h.message_id = mid
		   AND h.unsubscribed_at IS NULL;
	END IF;
	unsubscribed := n > 0;
END
$$;

REVOKE ALL ON FUNCTION broadcast.unsubscribe(token text, OUT workspace_id text, OUT email text, OUT list_id text, OUT unsubscribed boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.unsubscribe(token text, OUT workspace_id text, OUT email text, OUT list_id text, OUT unsubscribed boolean) TO broadcast_webhook;
GRANT ALL ON FUNCTION broadcast.unsubscribe(token text, OUT workspace_id text, OUT email text, OUT list_id text, OUT unsubscribed boolean) TO broadcast_user;
GRANT ALL ON FUNCTION broadcast.unsubscribe(token text, OUT workspace_id text, OUT email text, OUT list_id text, OUT unsubscribed boolean) TO broadcast_admin;
