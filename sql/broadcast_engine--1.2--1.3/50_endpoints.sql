/* ------------------------------------------------------------------------
 * 1.3: integration targets and the queue rows of a broadcast
 *
 * An integration's endpoint or SMTP host is where the sender connects from
 * inside the server's network, and the answer comes back to the tenant in
 * dead_letters.last_error.  Unless a superuser turns on
 * broadcast_engine.allow_private_endpoints, targets must be public (literal
 * addresses and internal names are refused here, every connection again in
 * the sender, after name resolution); plain http and SMTP without TLS need
 * broadcast_engine.allow_insecure_transport, here as at send time.  The
 * check is a trigger, so that every way of writing a config
 * (create_integration, update_integration, create_shared_integration, or
 * the owner's own UPDATE) goes through it.
 *
 * A broadcast's remaining queue rows follow its integration: changing it
 * on a paused broadcast used to leave them on the old one.
 * ------------------------------------------------------------------------ */

/* raises unless the sender may connect there under the current settings (src/endpoint.c) */
CREATE FUNCTION broadcast._check_integration_target(endpoint text, smtp_host text, smtp_tls text)
RETURNS void
LANGUAGE C
STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_check_integration_target';
-- left executable by PUBLIC: the trigger runs as whoever writes the row

CREATE FUNCTION broadcast._integration_target_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* a config written before 1.3, or before a setting changed, stays until it changes */
	IF TG_OP = 'INSERT' OR NEW.config IS DISTINCT FROM OLD.config OR NEW.provider IS DISTINCT FROM OLD.provider THEN
		PERFORM broadcast._check_integration_target(
			NEW.config->>'endpoint',
			CASE WHEN NEW.provider = 'smtp' THEN NEW.config->>'host' END,
			CASE WHEN NEW.provider = 'smtp' THEN coalesce(NEW.config->>'tls', 'starttls') END);
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER integrations_target_check
	BEFORE INSERT OR UPDATE OF config, provider ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._integration_target_trigger();
CREATE TRIGGER shared_integrations_target_check
	BEFORE INSERT OR UPDATE OF config, provider ON broadcast.shared_integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._integration_target_trigger();

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
CREATE FUNCTION broadcast._queue_follows_integration()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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

CREATE TRIGGER broadcasts_queue_follows_integration
	AFTER UPDATE OF integration_id ON broadcast.broadcasts
	FOR EACH ROW WHEN (OLD.integration_id IS DISTINCT FROM NEW.integration_id)
	EXECUTE FUNCTION broadcast._queue_follows_integration();
