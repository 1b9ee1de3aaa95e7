/* deletes contacts (and their memberships); history and suppressions stay */

CREATE OR REPLACE FUNCTION broadcast.delete_contacts(workspace_id text, emails text[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION broadcast.delete_contacts(workspace_id text, emails text[]) IS 'Deletes contacts and their list memberships; history and suppressions stay (see forget_contact for erasure)';
