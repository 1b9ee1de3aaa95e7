/*
 * Widens each broadcast's message id range (broadcasts.first_message_id,
 * last_message_id) to cover the workspace's history rows of it.  The
 * senders' record statement keeps the ranges as it writes history; this is
 * for rows written another way (an import from another service, the 1.2
 * update's moved rows).  Only widens: a sender recording meanwhile has
 * widened the range for rows this statement's snapshot cannot see.  Reads
 * the workspace's whole history, and locks its broadcasts meanwhile.
 */

CREATE OR REPLACE FUNCTION broadcast.refresh_broadcast_ranges(workspace_id text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	n integer;
BEGIN
	PERFORM broadcast._require_admin('refresh broadcast ranges');
	PERFORM broadcast._authorize(refresh_broadcast_ranges.workspace_id);
	/* in the senders' order (lock_broadcasts_plan): a sender recording meanwhile waits, never deadlocks */
	PERFORM 1 FROM broadcast.broadcasts b
	  WHERE b.workspace_id = refresh_broadcast_ranges.workspace_id
	  ORDER BY b.broadcast_id FOR NO KEY UPDATE;
	/* uuid has no min() or max(): its text in "C" order is its byte order */
	UPDATE broadcast.broadcasts b
	   SET first_message_id = least(b.first_message_id, x.lo),
		   last_message_id = greatest(b.last_message_id, x.hi)
	  FROM (SELECT h.broadcast_id,
				   min(h.message_id::text COLLATE "C")::uuid AS lo,
				   max(h.message_id::text COLLATE "C")::uuid AS hi
			  FROM broadcast.message_history h
			 WHERE h.workspace_id = refresh_broadcast_ranges.workspace_id AND h.broadcast_id IS NOT NULL
			 GROUP BY h.broadcast_id) x
	 WHERE b.workspace_id = refresh_broadcast_ranges.workspace_id AND b.broadcast_id = x.broadcast_id
	   AND (b.first_message_id IS NULL OR b.first_message_id > x.lo OR b.last_message_id < x.hi);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

REVOKE ALL ON FUNCTION broadcast.refresh_broadcast_ranges(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.refresh_broadcast_ranges(text) TO broadcast_admin;

COMMENT ON FUNCTION broadcast.refresh_broadcast_ranges(text) IS
	'Widens the workspace''s broadcasts'' message id ranges over history rows written other than by the senders (an import); returns the broadcasts changed';
