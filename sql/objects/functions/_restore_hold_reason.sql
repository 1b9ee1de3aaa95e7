/* the reason a held broadcast shows in last_error */

CREATE OR REPLACE FUNCTION broadcast._restore_hold_reason() RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT 'held: restored from a backup or copied from another database; '
		   'call broadcast.resume_after_restore() to send'
$$;
