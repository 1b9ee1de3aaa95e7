/*
 * The rows of a broadcast that are not in flight take its new integration
 * in the same transaction.  Rows a sender holds keep theirs until the
 * sender records them: its completion locks the broadcast first and then
 * gives any row that stays queued the broadcast's integration, so whichever
 * commits first, no row goes out through the old integration after the
 * change.  A row is left alone while its lease runs, because the sender
 * finds its rows again by their physical position.  The orchestrator needs
 * nothing more: a chunk commits only while its broadcast is sending and its
 * task lease holds (pause_broadcast ends both, and the chunk's update of
 * the broadcast row waits for ours), so the rows it adds were committed
 * before the change, and are moved here, or are rolled back; its next step
 * reads the new integration.
 */

CREATE OR REPLACE FUNCTION broadcast._queue_follows_integration() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	UPDATE broadcast.email_queue q
	   SET integration_id = NEW.integration_id
	 WHERE q.workspace_id = NEW.workspace_id AND q.broadcast_id = NEW.broadcast_id
	   AND q.integration_id <> NEW.integration_id
	   AND (q.lease_until IS NULL OR q.lease_until <= now());
	RETURN NULL;
END
$$;
