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

-- left executable by PUBLIC: the trigger runs as whoever writes the row

CREATE TRIGGER integrations_target_check
	BEFORE INSERT OR UPDATE OF config, provider ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._integration_target_trigger();
CREATE TRIGGER shared_integrations_target_check
	BEFORE INSERT OR UPDATE OF config, provider ON broadcast.shared_integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._integration_target_trigger();

CREATE TRIGGER broadcasts_queue_follows_integration
	AFTER UPDATE OF integration_id ON broadcast.broadcasts
	FOR EACH ROW WHEN (OLD.integration_id IS DISTINCT FROM NEW.integration_id)
	EXECUTE FUNCTION broadcast._queue_follows_integration();
