CREATE OR REPLACE FUNCTION broadcast.subscribe(workspace_id text, list_id text, emails text[], status text DEFAULT 'active'::text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	bad text;
	n bigint;
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
	SELECT e INTO bad FROM unnest(emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;

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
	RETURN n;
END
$$;
