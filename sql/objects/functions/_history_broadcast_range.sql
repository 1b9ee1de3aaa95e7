/*
 * The history trigger that keeps each broadcast's message id range
 * (broadcasts.first_message_id, last_message_id) covering its history rows,
 * whoever inserts them: the senders' record statement, an import, a test.
 * A broadcast's statistics read the history's primary key in that range
 * instead of an index of broadcast and template paid for on every message
 * sent (issue 13).  Once per statement: one UPDATE per batch, of broadcast
 * rows the senders have already locked for their counters, and none when
 * the range already covers the rows.  Ids never change after the insert,
 * and a row that leaves (retention, erasure) only makes the range wider
 * than it must be.  uuid has no min() or max(): its text in "C" order is
 * its byte order.
 */

CREATE OR REPLACE FUNCTION broadcast._history_broadcast_range() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	UPDATE broadcast.broadcasts b
	   SET first_message_id = least(b.first_message_id, x.lo),
		   last_message_id = greatest(b.last_message_id, x.hi)
	  FROM (SELECT n.workspace_id, n.broadcast_id,
				   min(n.message_id::text COLLATE "C")::uuid AS lo,
				   max(n.message_id::text COLLATE "C")::uuid AS hi
			  FROM new_rows n
			 WHERE n.broadcast_id IS NOT NULL
			 GROUP BY n.workspace_id, n.broadcast_id) x
	 WHERE b.workspace_id = x.workspace_id AND b.broadcast_id = x.broadcast_id
	   AND (b.first_message_id IS NULL OR b.first_message_id > x.lo OR b.last_message_id < x.hi);
	RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION broadcast._history_broadcast_range() FROM PUBLIC;
