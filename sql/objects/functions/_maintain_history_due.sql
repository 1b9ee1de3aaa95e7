/*
 * Called by the scheduler (and so by run_tasks) about once a minute: runs
 * maintain_history() when the last run is an hour old.  The time is in
 * broadcast.instance, which is never dumped; CREATE EXTENSION sets it to
 * now, so a database being restored gets its first run an hour later,
 * after pg_restore has created the dump's own partitions (a partition made
 * here first would make the dump's CREATE TABLE fail).  A failure is a
 * WARNING, and the next try ten minutes later: the partitions are made
 * months ahead, and the DEFAULT partition takes any row meanwhile.
 */

CREATE OR REPLACE FUNCTION broadcast._maintain_history_due() RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	r record;
BEGIN
	/*
	 * Nor while pg_restore (its default application_name) is connected to
	 * this database: a restore may take longer than the hour.
	 */
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
				WHERE a.datname = pg_catalog.current_database()
				  AND a.application_name = 'pg_restore') THEN
		RETURN false;
	END IF;
	UPDATE broadcast.instance SET history_maintained_at = now()
	 WHERE history_maintained_at <= now() - interval '1 hour';
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	BEGIN
		r := broadcast.maintain_history();
		IF r.created + r.dropped + r.deleted > 0 THEN
			RAISE LOG 'broadcast_engine: message history maintenance created % partitions, dropped %, deleted % rows',
				r.created, r.dropped, r.deleted;
		END IF;
	EXCEPTION WHEN OTHERS THEN
		/* try again in ten minutes (a lock it could not get, most likely) */
		UPDATE broadcast.instance SET history_maintained_at = now() - interval '50 minutes';
		RAISE WARNING USING MESSAGE = 'broadcast_engine: message history maintenance failed: ' || SQLERRM,
			DETAIL = 'SQLSTATE ' || SQLSTATE || '; retried in ten minutes, or call broadcast.maintain_history().';
	END;
	RETURN true;
END
$$;

REVOKE ALL ON FUNCTION broadcast._maintain_history_due() FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast._maintain_history_due() TO broadcast_admin;
