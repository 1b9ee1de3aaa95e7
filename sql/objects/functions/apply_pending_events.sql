/*
 * For pg_cron or an operator: applies every pending event whose history
 * row exists, and drops the ones older than max_age (at most ten years, so
 * that now() - max_age is a time).  Parked events also expire on their own
 * (broadcast_engine.pending_events_max_age) when their workspace parks more.
 */

CREATE OR REPLACE FUNCTION broadcast.apply_pending_events(max_age interval DEFAULT '7 days'::interval, OUT applied bigint, OUT expired bigint) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._require_admin('apply pending delivery events');
	IF max_age IS NULL OR max_age < interval '0' OR max_age > interval '3650 days' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'max_age must be an interval between 0 and 3650 days';
	END IF;
	applied := broadcast._apply_pending(NULL, NULL);
	DELETE FROM broadcast.pending_events p WHERE p.received_at < now() - max_age;
	GET DIAGNOSTICS expired = ROW_COUNT;
END
$$;

REVOKE ALL ON FUNCTION broadcast.apply_pending_events(max_age interval, OUT applied bigint, OUT expired bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.apply_pending_events(max_age interval, OUT applied bigint, OUT expired bigint) TO broadcast_admin;
