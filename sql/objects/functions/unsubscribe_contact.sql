/* a row in flight is left to its sender, as when in flight meant status 'sending' */

CREATE OR REPLACE FUNCTION broadcast.unsubscribe_contact(workspace_id text, email text, list_id text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	addr text := lower(unsubscribe_contact.email);
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(unsubscribe_contact.workspace_id);
	PERFORM broadcast._check_email(unsubscribe_contact.email);
	/* the audience lock (docs/guarantees.md): also drop rows of a chunk in flight; later chunks see this */
	PERFORM broadcast._lock_audience(unsubscribe_contact.workspace_id);
	IF unsubscribe_contact.list_id IS NOT NULL THEN
		PERFORM broadcast._require_list(unsubscribe_contact.workspace_id, unsubscribe_contact.list_id);
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe_contact.workspace_id
		   AND m.list_id = unsubscribe_contact.list_id AND m.email = addr;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n = 0 THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('%s is not a member of list %s', quote_literal(addr),
								 quote_literal(unsubscribe_contact.list_id));
		END IF;
		/* queued mail for broadcasts to this list is no longer wanted */
		DELETE FROM broadcast.email_queue q
		 WHERE q.workspace_id = unsubscribe_contact.workspace_id AND q.email = addr
		   AND q.list_id = unsubscribe_contact.list_id AND q.status = 'pending'
		   AND (q.lease_until IS NULL OR q.lease_until <= now());
		RETURN n;
	END IF;

	IF NOT EXISTS (SELECT 1 FROM broadcast.contacts c
					WHERE c.workspace_id = unsubscribe_contact.workspace_id AND c.email = addr) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('contact %s does not exist in workspace %s', quote_literal(addr),
							 quote_literal(unsubscribe_contact.workspace_id));
	END IF;
	UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
	 WHERE m.workspace_id = unsubscribe_contact.workspace_id AND m.email = addr
	   AND m.status <> 'unsubscribed';
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO broadcast.suppressions (workspace_id, email, reason)
	VALUES (unsubscribe_contact.workspace_id, addr, 'unsubscribe')
	ON CONFLICT DO NOTHING;
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = unsubscribe_contact.workspace_id AND q.email = addr AND q.status = 'pending'
		   AND (q.lease_until IS NULL OR q.lease_until <= now());
	RETURN n;
END
$$;
