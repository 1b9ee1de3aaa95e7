/* takes addresses off a list (the members row goes; unsubscribe_contact keeps it as unsubscribed) */

CREATE OR REPLACE FUNCTION broadcast.remove_members(workspace_id text, list_id text, emails text[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
