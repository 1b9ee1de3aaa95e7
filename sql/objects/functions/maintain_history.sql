/*
 * Keeps message_history's monthly partitions (see docs/operations.md,
 * "Message history retention"):
 *  1. deletes, row by row, the history of workspaces whose own retention is
 *     shorter, and the DEFAULT partition's rows older than their
 *     workspace's retention (by created_at);
 *  2. drops every partition whose whole month is older than the longest
 *     retention in force (broadcast_engine.history_retention, and each
 *     workspace's history_retention setting; 0 = keep forever);
 *  3. creates the partitions of the current month (UTC) and of the next
 *     months_ahead months, and of any month whose rows wait in the DEFAULT
 *     partition.
 * Its locks wait at most 500 ms (below the senders' lock_timeout, so that
 * a sender never times out queued behind it); the scheduler tries again
 * ten minutes after a failure.
 * The scheduler calls it about once an hour; pg_cron setups get it through
 * run_tasks.  Administrators only.
 */

CREATE OR REPLACE FUNCTION broadcast.maintain_history(months_ahead integer DEFAULT 2, OUT created integer, OUT dropped integer, OUT deleted bigint) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET lock_timeout TO '500ms'
    AS $$
DECLARE
	global_months integer := broadcast._setting_int('broadcast_engine.history_retention', 0, 0, 1200);
	this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
	longest integer;
	cutoff timestamptz;
	m date;
	p record;
	w record;
	n bigint;
BEGIN
	PERFORM broadcast._require_admin('maintain the message history');
	IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 24 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'months_ahead must be between 0 and 24',
			DETAIL = format('The value was %s.', coalesce(months_ahead::text, 'null'));
	END IF;
	created := 0;
	dropped := 0;
	deleted := 0;

	/* the longest retention any workspace has: 0 (forever) wins */
	SELECT CASE WHEN bool_or(x.months = 0) THEN 0 ELSE max(x.months) END INTO longest
	  FROM (SELECT global_months AS months
			UNION ALL
			SELECT (ws.settings->>'history_retention')::integer
			  FROM broadcast.workspaces ws WHERE ws.settings ? 'history_retention') x;
	IF longest > 0 THEN
		cutoff := now() - make_interval(months => longest);
	END IF;

	/*
	 * Row deletes first, then the drops (ACCESS EXCLUSIVE on the root), then
	 * the new months (ACCESS EXCLUSIVE on DEFAULT): the heavy locks come last,
	 * held only until commit, and in the order queries take them (root,
	 * then partitions), so a sender's record statement waits briefly and
	 * never deadlocks with this.
	 */
	/* 1. workspaces with a shorter retention of their own, row by row; DEFAULT by created_at */
	FOR w IN
		SELECT ws.workspace_id,
			   coalesce((ws.settings->>'history_retention')::integer, global_months) AS months
		  FROM broadcast.workspaces ws
		 ORDER BY 1
	LOOP
		CONTINUE WHEN w.months = 0;
		IF longest = 0 OR w.months < longest THEN
			DELETE FROM broadcast.message_history h
			 WHERE h.workspace_id = w.workspace_id
			   AND h.message_id < broadcast._uuid7_floor(greatest(now() - make_interval(months => w.months),
																	 timestamptz '1970-01-01 00:00:00+00'))
			   AND h.tableoid <> 'broadcast.message_history_default'::regclass;
			GET DIAGNOSTICS n = ROW_COUNT;
			deleted := deleted + n;
		END IF;
		DELETE FROM broadcast.message_history_default d
		 WHERE d.workspace_id = w.workspace_id
		   AND d.created_at < now() - make_interval(months => w.months);
		GET DIAGNOSTICS n = ROW_COUNT;
		deleted := deleted + n;
	END LOOP;
	/* 2. whole partitions older than the longest retention */
	/* nothing while there is no workspace: a restore may not have reached them yet */
	IF cutoff IS NOT NULL AND EXISTS (SELECT 1 FROM broadcast.workspaces) THEN
		FOR p IN
			SELECT c.relname,
				   to_date(substr(c.relname, 18), 'YYYYMM') AS month
			  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			 WHERE i.inhparent = 'broadcast.message_history'::regclass
			   AND c.relname ~ '^message_history_p[0-9]{6}$'
			 ORDER BY 1
		LOOP
			IF (p.month + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
				EXECUTE format('DROP TABLE broadcast.%I', p.relname);
				dropped := dropped + 1;
			END IF;
		END LOOP;
	END IF;

	/* 3. this month, the months ahead, and the months found in DEFAULT */
	FOR m IN
		SELECT (this_month + make_interval(months => g))::date FROM generate_series(0, months_ahead) g
		UNION
		SELECT DISTINCT date_trunc('month', t AT TIME ZONE 'UTC')::date
		  FROM (SELECT broadcast._uuid7_time(d.message_id) AS t
				  FROM broadcast.message_history_default d) y
		 WHERE t IS NOT NULL
		   AND t < this_month + interval '25 months'
		   AND (cutoff IS NULL OR
				(date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' > cutoff)
		ORDER BY 1
	LOOP
		IF broadcast._history_add_partition(m) THEN
			created := created + 1;
		END IF;
	END LOOP;

END
$$;

COMMENT ON FUNCTION broadcast.maintain_history(months_ahead integer, OUT created integer, OUT dropped integer, OUT deleted bigint) IS 'Creates message_history''s monthly partitions ahead and drops or trims what is older than the retention';

REVOKE ALL ON FUNCTION broadcast.maintain_history(months_ahead integer, OUT created integer, OUT dropped integer, OUT deleted bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.maintain_history(months_ahead integer, OUT created integer, OUT dropped integer, OUT deleted bigint) TO broadcast_admin;
