/* ------------------------------------------------------------------------
 * Erasure: the address nowhere but in the suppression (when kept)
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast.forget_contact(workspace_id text, email text, keep_suppression boolean DEFAULT true) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
	addr text := lower(forget_contact.email);
	n bigint;
	ws text := forget_contact.workspace_id;
	/* the address as a case-insensitive regular expression, for free text that may quote it */
	pat text := regexp_replace(lower(forget_contact.email), '([.+*?^$(){}|\[\]\\])', '\\\1', 'g');
	in_flight bigint;
BEGIN
	PERFORM broadcast._authorize_caller(forget_contact.workspace_id);
	PERFORM broadcast._check_email(forget_contact.email);
	IF keep_suppression IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'keep_suppression must not be NULL';
	END IF;
	/* like a suppression: chunks in flight finish first, later ones see the change */
	PERFORM broadcast._lock_audience(forget_contact.workspace_id);
	IF keep_suppression THEN
		INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
		VALUES (forget_contact.workspace_id, addr, 'manual', 'forgotten')
		ON CONFLICT DO NOTHING;
	ELSE
		DELETE FROM broadcast.suppressions s
		 WHERE s.workspace_id = forget_contact.workspace_id AND s.email = addr;
	END IF;
	/*
	 * Keeping the suppression keeps the address (docs/security.md), not
	 * what a provider said about it.
	 */
	IF keep_suppression THEN
		UPDATE broadcast.suppressions s SET detail = 'forgotten'
		 WHERE s.workspace_id = ws AND s.email = addr AND s.detail IS DISTINCT FROM 'forgotten';
	END IF;
	/* events parked for this person's messages carry no address but may quote it in their detail */
	DELETE FROM broadcast.pending_events p
	 WHERE p.workspace_id = ws
	   AND p.message_id IN (SELECT h.message_id FROM broadcast.message_history h
							 WHERE h.workspace_id = ws AND h.email = addr
							UNION ALL
							SELECT q.message_id FROM broadcast.email_queue q
							 WHERE q.workspace_id = ws AND q.email = addr);
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = forget_contact.workspace_id AND q.email = addr
	   AND (q.lease_until IS NULL OR q.lease_until <= now())
	   AND NOT (q.status = 'sending' AND q.next_attempt_at > now());
	/* list memberships go with the contact (ON DELETE CASCADE) */
	DELETE FROM broadcast.contacts c
	 WHERE c.workspace_id = forget_contact.workspace_id AND c.email = addr;
	DELETE FROM broadcast.soft_bounces b
	 WHERE b.workspace_id = forget_contact.workspace_id AND b.email = addr;
	DELETE FROM broadcast.pending_events p
	 WHERE p.workspace_id = forget_contact.workspace_id AND p.email = addr;
	UPDATE broadcast.message_history h
	   SET email = 'forgotten-' || left(md5(h.message_id::text), 16) || '@invalid', error = NULL
	 WHERE h.workspace_id = forget_contact.workspace_id AND h.email = addr;
	GET DIAGNOSTICS n = ROW_COUNT;

	/*
	 * The orchestrator's keyset cursors: the address is replaced by the
	 * greatest remaining address below it (or the start), which sorts the
	 * same against every address the workspace still has.  The A/B cutoff
	 * compares (hash, address) pairs, so its replacement must share the hash.
	 */
	UPDATE broadcast.tasks t
	   SET cursor_email = (SELECT max(m.email) FROM broadcast.list_members m
						   WHERE m.workspace_id = t.workspace_id AND m.email < addr)
	 WHERE t.workspace_id = ws AND t.cursor_email = addr;
	UPDATE broadcast.tasks t
	   SET ab_cutoff_email = coalesce((SELECT max(m.email) FROM broadcast.list_members m
									   WHERE m.workspace_id = t.workspace_id AND m.email < addr
										 AND hashtextextended(m.email, hashtext(t.broadcast_id)::int8)
											 = t.ab_cutoff_hash), '')
	 WHERE t.workspace_id = ws AND t.ab_cutoff_email = addr;
	/* error texts (a provider's reply may quote the recipient) */
	UPDATE broadcast.email_queue q SET last_error = regexp_replace(q.last_error, pat, '[forgotten]', 'gi')
	 WHERE q.workspace_id = ws AND q.last_error ~* pat;
	UPDATE broadcast.tasks t SET last_error = regexp_replace(t.last_error, pat, '[forgotten]', 'gi')
	 WHERE t.workspace_id = ws AND t.last_error ~* pat;
	UPDATE broadcast.broadcasts b SET last_error = regexp_replace(b.last_error, pat, '[forgotten]', 'gi')
	 WHERE b.workspace_id = ws AND b.last_error ~* pat;

	/* a message a sender holds right now is recorded when it finishes: say so */
	SELECT count(*) INTO in_flight FROM broadcast.email_queue q
	 WHERE q.workspace_id = ws AND q.email = addr;
	IF in_flight > 0 THEN
		RAISE WARNING USING
			MESSAGE = format('%s message(s) to this address are being sent and will be recorded with it', in_flight),
			HINT = 'Call broadcast.forget_contact() again once they finish (within broadcast_engine.task_lease); it is safe to repeat.';
	END IF;
	RETURN n;
END
$_$;
