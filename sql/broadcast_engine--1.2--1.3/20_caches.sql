/*
 * Caches that never serve the past.
 *
 * The senders cache integrations and compiled broadcasts (templates,
 * workspace settings, list names) keyed by ids.  Every table those caches
 * read gets a statement-level trigger that marks the transaction; when it
 * commits, the shared cache generation moves (src/shmem.c) and every sender
 * loads the rows again before its next batch.  The broadcasts trigger
 * ignores the counters and states the engine itself updates all the time.
 *
 * Integrations and shared integrations get an incarnation: a uuid given at
 * creation, part of the rate-limit and breaker keys, so an integration
 * dropped and made again under the same ids (drop_workspace, then
 * create_workspace) never inherits the old one's bucket, Retry-After pause
 * or open breaker.
 */

ALTER TABLE broadcast.integrations
	ADD COLUMN incarnation uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();
COMMENT ON COLUMN broadcast.integrations.incarnation IS
	'Set when the row is created; keeps rate-limit and breaker state of a re-created integration apart';
ALTER TABLE broadcast.shared_integrations
	ADD COLUMN incarnation uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();
COMMENT ON COLUMN broadcast.shared_integrations.incarnation IS
	'Set when the row is created; keeps rate-limit and breaker state of a re-created integration apart';

REVOKE ALL ON FUNCTION broadcast._bump_generation() FROM PUBLIC;

CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.workspaces
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.workspace_secrets
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.integrations
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.integration_secrets
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.shared_integrations
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.templates
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.lists
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broadcast.broadcast_variations
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
/*
 * Broadcasts: rows coming and going, and the columns a sender's composer
 * or key depends on; not the counters and states that the senders and the
 * scheduler update with every batch and chunk.
 */
CREATE TRIGGER cache_generation
	AFTER INSERT OR DELETE OR TRUNCATE ON broadcast.broadcasts
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
CREATE TRIGGER cache_generation_update
	AFTER UPDATE OF workspace_id, broadcast_id, name, lists, integration_id, template_id, variations
	ON broadcast.broadcasts
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();
