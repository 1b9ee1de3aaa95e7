CREATE OR REPLACE FUNCTION broadcast.subscribe(
	workspace_id text,
	list_id text,
	emails text[],
	status text DEFAULT 'active',
	double_opt_in boolean DEFAULT false,
	source_ip inet DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	n bigint;
	integ text;
	queued bigint;
BEGIN
	PERFORM broadcast._authorize(subscribe.workspace_id);
	PERFORM broadcast._require_list(subscribe.workspace_id, subscribe.list_id);
	IF subscribe.status IS NULL OR subscribe.status NOT IN ('active', 'pending') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid subscription status %s', coalesce(quote_literal(subscribe.status), 'NULL')),
			HINT = 'Use "active", or "pending" for double opt-in; unsubscribe with broadcast.unsubscribe_contact().';
	END IF;
	IF emails IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'emails must not be NULL';
	END IF;
	IF double_opt_in IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'double_opt_in must not be NULL';
	END IF;
	SELECT e INTO bad FROM unnest(emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;

	IF NOT double_opt_in THEN
		INSERT INTO broadcast.contacts (workspace_id, email)
		SELECT DISTINCT subscribe.workspace_id, lower(e) FROM unnest(emails) e
		ON CONFLICT DO NOTHING;

		/* an explicit subscribe reactivates a member; suppressions still apply at send time */
		INSERT INTO broadcast.list_members AS m (workspace_id, list_id, email, status)
		SELECT DISTINCT subscribe.workspace_id, subscribe.list_id, lower(e), subscribe.status
		  FROM unnest(emails) e
		ON CONFLICT ON CONSTRAINT list_members_pkey DO UPDATE
			SET status = EXCLUDED.status, updated_at = now()
			WHERE m.status IS DISTINCT FROM EXCLUDED.status;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF source_ip IS NOT NULL AND subscribe.status = 'active' THEN
			INSERT INTO broadcast.consents AS c (workspace_id, email, list_id, method, requested_at, request_ip,
												 confirmed_at)
			SELECT DISTINCT subscribe.workspace_id, lower(e), subscribe.list_id, 'single', now(), source_ip, now()
			  FROM unnest(emails) e
			ON CONFLICT ON CONSTRAINT consents_pkey DO UPDATE
				SET method = 'single', requested_at = now(), request_ip = EXCLUDED.request_ip, message_id = NULL,
					confirmed_at = now(), confirm_ip = NULL;
		END IF;
		RETURN n;
	END IF;

	integ := broadcast._optin_broadcast(subscribe.workspace_id, subscribe.list_id);
	INSERT INTO broadcast.contacts (workspace_id, email)
	SELECT DISTINCT subscribe.workspace_id, lower(e) FROM unnest(emails) e
	ON CONFLICT DO NOTHING;

	/*
	 * Active members stay active; the others wait for their confirmation.
	 * One confirmation in the queue per address: a second list's request
	 * joins the one queued (confirming it confirms both).
	 */
	WITH m AS (
		INSERT INTO broadcast.list_members AS m (workspace_id, list_id, email, status)
		SELECT DISTINCT subscribe.workspace_id, subscribe.list_id, lower(e), 'pending'
		  FROM unnest(emails) e
		ON CONFLICT ON CONSTRAINT list_members_pkey DO UPDATE
			SET status = 'pending', updated_at = now()
			WHERE m.status <> 'active'
		RETURNING m.email
	), q AS (
		INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id,
										   variation, message_id)
		SELECT subscribe.workspace_id, 'double-opt-in', m.email, integ, subscribe.list_id, 0,
			   broadcast._uuid_v7()
		  FROM m
		 WHERE NOT EXISTS (SELECT 1 FROM broadcast.suppressions s
							WHERE s.workspace_id = subscribe.workspace_id AND s.email = m.email)
		   /* not again within 10 minutes: subscribe() is no way to flood an inbox */
		   AND NOT EXISTS (SELECT 1 FROM broadcast.consents c
							WHERE c.workspace_id = subscribe.workspace_id AND c.email = m.email
							  AND c.list_id = subscribe.list_id AND c.method = 'double'
							  AND c.confirmed_at IS NULL AND c.requested_at > now() - interval '10 minutes')
		ON CONFLICT DO NOTHING
		RETURNING email_queue.email, email_queue.message_id
	), c AS (
		INSERT INTO broadcast.consents AS c (workspace_id, email, list_id, method, requested_at, request_ip,
											 message_id)
		SELECT subscribe.workspace_id, m.email, subscribe.list_id, 'double', now(), source_ip,
			   coalesce(q.message_id, eq.message_id)
		  FROM m
		  LEFT JOIN q ON q.email = m.email
		  LEFT JOIN broadcast.email_queue eq
				 ON eq.workspace_id = subscribe.workspace_id AND eq.broadcast_id = 'double-opt-in'
				AND eq.email = m.email
		 WHERE coalesce(q.message_id, eq.message_id) IS NOT NULL
		ON CONFLICT ON CONSTRAINT consents_pkey DO UPDATE
			SET method = 'double', requested_at = now(), request_ip = EXCLUDED.request_ip,
				message_id = EXCLUDED.message_id, confirmed_at = NULL, confirm_ip = NULL
			WHERE c.message_id IS DISTINCT FROM EXCLUDED.message_id
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM q) INTO n, queued;
	IF queued > 0 THEN
		PERFORM broadcast._wake_senders();
	END IF;
	RETURN n;
END
$$;

COMMENT ON FUNCTION broadcast.subscribe(text, text, text[], text, boolean, inet) IS
	'Adds contacts to a list; with double_opt_in, as pending members sent a confirmation link';
