/* ------------------------------------------------------------------------
 * record_bounce_message
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION broadcast.record_bounce_message(
	workspace_id text,
	raw_message bytea,
	OUT kind text, OUT bounce_class text, OUT message_id uuid, OUT email text,
	OUT attributed_by text, OUT status text, OUT applied integer, OUT pending integer,
	OUT suppressed integer)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ws text := record_bounce_message.workspace_id;
	rep jsonb;
	rcpt jsonb;
	tok text;
	secret bytea;
	cand uuid;
	cand_email text;
	integ text;
	ev text;
	occurred timestamptz;
	why text;
	r record;
BEGIN
	PERFORM broadcast._authorize_webhook(ws);
	IF raw_message IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'raw_message must not be NULL';
	END IF;
	/* the parser's own bound (BOUNCE_INPUT_MAX in include/bounce.h) */
	IF octet_length(raw_message) > 2097152 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('returned message is too large (%s bytes)', octet_length(raw_message)),
			DETAIL = 'At most 2097152 bytes (2 MB) are read.',
			HINT = 'Have the MTA return only the headers of the original message (Postfix: bounce_size_limit), or pass the first 2 MB.';
	END IF;

	rep := broadcast._bounce_parse(raw_message);
	kind := rep->>'kind';
	bounce_class := rep->>'class';
	applied := 0; pending := 0; suppressed := 0;
	/* the first recipient the report acts on, else the first at all */
	SELECT x INTO rcpt FROM jsonb_array_elements(rep->'recipients') WITH ORDINALITY AS t(x, n)
	 ORDER BY (x->>'class' = 'none'), n LIMIT 1;
	email := nullif(rcpt->>'email', '');
	status := nullif(rcpt->>'status', '');

	/* 1. the VERP token: signed, so it names the message for certain */
	SELECT s.unsubscribe_secret INTO secret FROM broadcast.workspace_secrets s WHERE s.workspace_id = ws;
	FOR tok IN SELECT jsonb_array_elements_text(rep->'tokens') LOOP
		message_id := broadcast._verp_message_id(ws, tok, secret);
		IF message_id IS NOT NULL THEN
			attributed_by := 'verp';
			EXIT;
		END IF;
	END LOOP;

	/*
	 * 2. else our Message-ID, <message_id@sending domain>, in the returned
	 * headers: unsigned, so only a message of this workspace sent through
	 * SMTP (the HTTP providers' bounces come through their signed webhooks,
	 * docs/events.md) to the address the report names counts
	 */
	IF message_id IS NULL AND kind <> 'none' THEN
		cand := broadcast._uuid_or_null(split_part(rep->>'message_id', '@', 1));
		IF cand IS NOT NULL THEN
			SELECT h.message_id INTO message_id FROM broadcast.message_history h
			 WHERE h.workspace_id = ws AND h.message_id = cand AND h.provider = 'smtp'
			   AND (record_bounce_message.email IS NULL OR h.email = record_bounce_message.email);
			IF message_id IS NOT NULL THEN
				attributed_by := 'message-id';
			END IF;
		END IF;
	END IF;

	/*
	 * The integration it went through: its history row, or while a sender
	 * has not recorded it yet, its queue row.  The queue has no index on
	 * message_id: it is probed by its key, once per broadcast that may be
	 * sending, with the address the report names.
	 */
	IF message_id IS NOT NULL THEN
		SELECT h.integration_id, h.email INTO integ, cand_email FROM broadcast.message_history h
		 WHERE h.workspace_id = ws AND h.message_id = record_bounce_message.message_id;
		IF NOT FOUND AND email IS NOT NULL THEN
			SELECT q.integration_id, q.email INTO integ, cand_email
			  FROM broadcast.broadcasts b
			  JOIN broadcast.email_queue q
				ON q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
			   AND q.email = record_bounce_message.email
			 WHERE b.workspace_id = ws
			   AND b.status IN ('processing', 'testing', 'test_completed', 'winner_selected', 'paused')
			   AND q.message_id = record_bounce_message.message_id
			 LIMIT 1;
		END IF;
		email := coalesce(cand_email, email);
	END IF;

	IF kind = 'none' THEN
		why := 'not a delivery status notification, feedback report or known bounce format';
	ELSIF message_id IS NULL THEN
		why := 'no valid VERP token and no Message-ID of a message this workspace sent by SMTP';
	ELSIF integ IS NULL THEN
		why := 'the message is neither in the history nor in the queue';
	END IF;

	INSERT INTO broadcast.bounce_intake AS b
		(workspace_id, received, attributed, unattributed, last_received_at, last_unattributed_at,
		 last_unattributed_reason)
	VALUES (ws, 1, CASE WHEN why IS NULL THEN 1 ELSE 0 END, CASE WHEN why IS NULL THEN 0 ELSE 1 END,
			now(), CASE WHEN why IS NOT NULL THEN now() END, why)
	ON CONFLICT ON CONSTRAINT bounce_intake_pkey DO UPDATE
	   SET received = b.received + 1,
		   attributed = b.attributed + EXCLUDED.attributed,
		   unattributed = b.unattributed + EXCLUDED.unattributed,
		   last_received_at = EXCLUDED.last_received_at,
		   last_unattributed_at = coalesce(EXCLUDED.last_unattributed_at, b.last_unattributed_at),
		   last_unattributed_reason = coalesce(EXCLUDED.last_unattributed_reason, b.last_unattributed_reason);
	IF why IS NOT NULL THEN
		attributed_by := NULL;
		IF kind = 'none' THEN
			message_id := NULL;
		END IF;
		RETURN;
	END IF;

	/*
	 * 3. the event path of record_events.  The report's own Date is the
	 * event's time, so a message fed twice is the same event twice.
	 */
	ev := CASE bounce_class WHEN 'hard' THEN 'bounced' WHEN 'soft' THEN 'bounced'
						   WHEN 'complaint' THEN 'complained' ELSE 'ignored' END;
	BEGIN
		occurred := least(nullif(rep->>'date', '')::timestamptz, now());
	EXCEPTION WHEN OTHERS THEN
		occurred := NULL;
	END;
	r := broadcast._apply_events(ws, integ, ARRAY[ROW(
			message_id, NULL, email, ev, coalesce(occurred, now()),
			CASE WHEN ev = 'bounced' THEN bounce_class END,
			left(concat_ws(' ', status, nullif(rcpt->>'diagnostic', '')), 500))::broadcast.delivery_event]);
	applied := r.applied; pending := r.pending; suppressed := r.suppressed;
END
$$;

COMMENT ON FUNCTION broadcast.record_bounce_message(text, bytea) IS
	'Reads a returned message (DSN, ARF or text bounce) and applies it like record_events';

REVOKE ALL ON FUNCTION broadcast.record_bounce_message(text, bytea) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.record_bounce_message(text, bytea)
	TO broadcast_webhook, broadcast_user, broadcast_admin;
