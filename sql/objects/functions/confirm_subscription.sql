/*
 * Confirms the subscriptions a /c/ token names (every list whose request
 * the message carried) and records when and from where; the members
 * become 'active' unless they left since.  A second call changes nothing.
 * Returns the lists confirmed.
 */
CREATE OR REPLACE FUNCTION broadcast.confirm_subscription(token text, client_ip text DEFAULT NULL)
RETURNS text[]
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	lists text[];
BEGIN
	t := broadcast._confirm_token(token);
	WITH c AS (
		UPDATE broadcast.consents c
		   SET confirmed_at = now(), confirm_ip = broadcast._inet_or_null(client_ip)
		 WHERE c.workspace_id = t.workspace_id AND c.email = t.email AND c.message_id = t.message_id
		   AND c.confirmed_at IS NULL AND c.requested_at > now() - t.expires
		RETURNING c.list_id
	), m AS (
		UPDATE broadcast.list_members lm SET status = 'active', updated_at = now()
		  FROM c
		 WHERE lm.workspace_id = t.workspace_id AND lm.list_id = c.list_id AND lm.email = t.email
		   AND lm.status = 'pending'
		RETURNING 1
	)
	SELECT coalesce(array_agg(c.list_id ORDER BY c.list_id), '{}') INTO lists FROM c;
	IF cardinality(lists) = 0 THEN
		SELECT coalesce(array_agg(c.list_id ORDER BY c.list_id), '{}') INTO lists
		  FROM broadcast.consents c
		 WHERE c.workspace_id = t.workspace_id AND c.email = t.email AND c.message_id = t.message_id
		   AND c.confirmed_at IS NOT NULL;
		IF cardinality(lists) = 0 THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'confirmation link expired',
				DETAIL = 'The link is too old, or a newer confirmation was sent since.',
				HINT = 'Subscribe again to get a new link.';
		END IF;
	END IF;
	RETURN lists;
END
$$;

REVOKE ALL ON FUNCTION broadcast.confirm_subscription(text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.confirm_subscription(text, text) TO broadcast_edge, broadcast_admin;

COMMENT ON FUNCTION broadcast.confirm_subscription(text, text) IS
	'Confirms a double opt-in from its /c/ token: the members become active and the consent is recorded';
