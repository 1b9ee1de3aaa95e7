CREATE OR REPLACE FUNCTION broadcast._state_error(b broadcast.broadcasts, action text, allowed text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
		MESSAGE = format('cannot %s broadcast %s while it is %s', action, quote_literal(b.broadcast_id), b.status),
		DETAIL = format('This is allowed only while the broadcast is %s.', allowed);
END
$$;
