/*
 * Drops a list and its memberships (the contacts stay).  Refused while a
 * broadcast that has not ended (drafts included) sends to it or excludes
 * it.  History keeps the list's id.  Returns the memberships removed.
 */

CREATE OR REPLACE FUNCTION broadcast.drop_list(workspace_id text, list_id text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	users text[];
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(drop_list.workspace_id);
	PERFORM broadcast._check_id('list', drop_list.list_id);
	PERFORM 1 FROM broadcast.lists l
	 WHERE l.workspace_id = drop_list.workspace_id AND l.list_id = drop_list.list_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('list %s does not exist in workspace %s',
							 quote_literal(drop_list.list_id), quote_literal(drop_list.workspace_id));
	END IF;
	SELECT array_agg(b.broadcast_id ORDER BY b.broadcast_id) INTO users
	  FROM broadcast.broadcasts b
	 WHERE b.workspace_id = drop_list.workspace_id
	   AND b.status NOT IN ('completed', 'cancelled', 'failed')
	   AND (drop_list.list_id = ANY (b.lists) OR drop_list.list_id = ANY (b.exclude_lists));
	IF users IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_in_use',
			MESSAGE = format('list %s is used by %s broadcast(s) that have not ended',
							 quote_literal(drop_list.list_id), cardinality(users)),
			DETAIL = format('Broadcasts: %s.', array_to_string(users, ', ')),
			HINT = 'Cancel them, wait until they complete, or change a draft''s lists with update_broadcast().';
	END IF;
	DELETE FROM broadcast.list_members m
	 WHERE m.workspace_id = drop_list.workspace_id AND m.list_id = drop_list.list_id;
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM broadcast.lists l
	 WHERE l.workspace_id = drop_list.workspace_id AND l.list_id = drop_list.list_id;
	RETURN n;
END
$$;
