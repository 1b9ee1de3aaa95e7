/*
 * Sets (or, with NULL, removes) a broadcast's sending window.  Queued mail
 * that waits is made due again, to be judged against the new window.
 */
CREATE OR REPLACE FUNCTION broadcast.set_sending_window(
	workspace_id text,
	broadcast_id text,
	send_window jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	w jsonb;
BEGIN
	PERFORM broadcast._authorize_caller(set_sending_window.workspace_id);
	b := broadcast._get_broadcast(set_sending_window.workspace_id, set_sending_window.broadcast_id);
	IF b.status IN ('completed', 'cancelled', 'failed') THEN
		PERFORM broadcast._state_error(b, 'change the sending window of',
			'draft, scheduled, processing, testing, test_completed, winner_selected or paused');
	END IF;
	w := broadcast._check_send_window(set_sending_window.send_window);
	UPDATE broadcast.broadcasts x SET send_window = w, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.email_queue q SET next_attempt_at = now()
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
	   AND q.status = 'pending' AND q.lease_until IS NULL AND q.next_attempt_at > now();
	IF FOUND THEN
		PERFORM broadcast._wake_senders();
	END IF;
	RETURN b.broadcast_id;
END
$$;

REVOKE ALL ON FUNCTION broadcast.set_sending_window(text, text, jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.set_sending_window(text, text, jsonb) TO broadcast_user, broadcast_admin;

COMMENT ON FUNCTION broadcast.set_sending_window(text, text, jsonb) IS
	'Sets a broadcast''s sending window {"from", "to", "days", "zone"} (NULL: any time)';
