/*
 * A suppression added by any path, including a workspace role's direct
 * INSERT into broadcast.suppressions, drops the address's queued rows at
 * once (rows a sender holds in flight finish on their own), under the
 * audience lock so that a chunk in flight cannot queue it afterwards.
 */

CREATE OR REPLACE FUNCTION broadcast._suppressions_drop_queued() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	ws text;
BEGIN
	FOR ws IN SELECT DISTINCT a.workspace_id FROM added a ORDER BY 1 LOOP
		PERFORM broadcast._lock_audience(ws);
	END LOOP;
	DELETE FROM broadcast.email_queue q
	 USING added a
	 WHERE q.workspace_id = a.workspace_id AND q.email = a.email
	   AND q.status IN ('pending', 'sending')
	   AND (q.lease_until IS NULL OR q.lease_until <= now())
	   AND NOT (q.status = 'sending' AND q.next_attempt_at > now());
	RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION broadcast._suppressions_drop_queued() FROM PUBLIC;
