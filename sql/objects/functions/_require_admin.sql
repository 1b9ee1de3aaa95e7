/*
 * Used by SECURITY DEFINER functions, where current_user is the owner: the
 * calling role must be an administrator.
 */

CREATE OR REPLACE FUNCTION broadcast._require_admin(action text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF NOT pg_has_role(broadcast._caller(), 'broadcast_admin', 'MEMBER') THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied to %s', action),
			HINT = 'Only members of broadcast_admin may do this.';
	END IF;
END
$$;
