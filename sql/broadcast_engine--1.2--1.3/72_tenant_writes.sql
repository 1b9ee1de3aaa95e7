/*
 * Tenants write their audience through the API only.
 *
 * Until 1.2 a workspace role held INSERT, UPDATE and DELETE on contacts,
 * lists and list_members (and INSERT on suppressions), row level security
 * keeping it to its own rows.  Those privileges also let it run
 * LOCK TABLE broadcast.contacts IN ACCESS EXCLUSIVE MODE, which froze the
 * scheduler and every sender for all workspaces, and SELECT ... FOR UPDATE
 * on any row it could see.  Now a tenant only reads tables; every write goes
 * through a SECURITY DEFINER function that checks the calling role first
 * (broadcast._authorize judges both current_user and the role after
 * SET ROLE, 30_caller.sql).  A tenant can still take ACCESS SHARE locks
 * (SELECT), which conflict with nothing the workers take.
 */
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
	ON broadcast.contacts, broadcast.lists, broadcast.list_members, broadcast.suppressions
	FROM broadcast_user;

/* the functions that wrote through the caller's privileges now write as the owner */
ALTER FUNCTION broadcast.upsert_contacts(text, jsonb) SECURITY DEFINER;
ALTER FUNCTION broadcast.create_list(text, text, text) SECURITY DEFINER;
ALTER FUNCTION broadcast.subscribe(text, text, text[], text) SECURITY DEFINER;

/* deletes contacts (and their memberships); history and suppressions stay */
CREATE FUNCTION broadcast.delete_contacts(workspace_id text, emails text[])
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM broadcast._authorize(delete_contacts.workspace_id);
	IF emails IS NULL OR array_position(emails, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'emails must not be NULL or contain NULL';
	END IF;
	IF cardinality(emails) > 100000 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('at most 100000 addresses per call, got %s', cardinality(emails));
	END IF;
	DELETE FROM broadcast.contacts c
	 WHERE c.workspace_id = delete_contacts.workspace_id
	   AND c.email = ANY (ARRAY(SELECT lower(e) FROM unnest(emails) e));
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION broadcast.delete_contacts(text, text[]) IS
	'Deletes contacts and their list memberships; history and suppressions stay (see forget_contact for erasure)';

/* takes addresses off a list (the members row goes; unsubscribe_contact keeps it as unsubscribed) */
CREATE FUNCTION broadcast.remove_members(workspace_id text, list_id text, emails text[])
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM broadcast._authorize(remove_members.workspace_id);
	PERFORM broadcast._require_list(remove_members.workspace_id, remove_members.list_id);
	IF emails IS NULL OR array_position(emails, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'emails must not be NULL or contain NULL';
	END IF;
	DELETE FROM broadcast.list_members m
	 WHERE m.workspace_id = remove_members.workspace_id AND m.list_id = remove_members.list_id
	   AND m.email = ANY (ARRAY(SELECT lower(e) FROM unnest(emails) e));
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

CREATE FUNCTION broadcast.rename_list(workspace_id text, list_id text, name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(rename_list.workspace_id);
	PERFORM broadcast._require_list(rename_list.workspace_id, rename_list.list_id);
	IF rename_list.name IS NULL OR btrim(rename_list.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'list name must not be empty';
	END IF;
	IF length(rename_list.name) > 200 THEN
		RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
			MESSAGE = 'list name must be at most 200 characters';
	END IF;
	UPDATE broadcast.lists l SET name = rename_list.name
	 WHERE l.workspace_id = rename_list.workspace_id AND l.list_id = rename_list.list_id;
END
$$;

/*
 * Suppresses addresses for the workspace (never mailed again by it), and
 * drops their queued rows at once (the trigger on suppressions, under the
 * audience lock).  Only 'manual' and 'unsubscribe' are a tenant's to give:
 * bounces and complaints come from the providers' events.
 */
CREATE FUNCTION broadcast.suppress(workspace_id text, emails text[], reason text DEFAULT 'manual',
								   detail text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	n bigint;
BEGIN
	PERFORM broadcast._authorize(suppress.workspace_id);
	IF suppress.reason IS NULL OR suppress.reason NOT IN ('manual', 'unsubscribe') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid suppression reason %s', broadcast._show(suppress.reason)),
			HINT = 'Use "manual" or "unsubscribe"; bounces and complaints come from delivery events.';
	END IF;
	IF emails IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'emails must not be NULL';
	END IF;
	SELECT e INTO bad FROM unnest(emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;
	IF length(suppress.detail) > 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
			MESSAGE = 'suppression detail must be at most 1000 characters';
	END IF;
	INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
	SELECT DISTINCT suppress.workspace_id, lower(e), suppress.reason, suppress.detail FROM unnest(emails) e
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION broadcast.suppress(text, text[], text, text) IS
	'Suppresses addresses for the workspace and drops their queued messages';
