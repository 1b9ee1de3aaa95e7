/* kept apart so workspace roles, which may read workspaces, never see them */

CREATE TABLE broadcast.workspace_secrets (
	workspace_id		text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	unsubscribe_secret	bytea NOT NULL CHECK (length(unsubscribe_secret) >= 32)
);

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.workspace_secrets FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.workspace_secrets TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.workspace_secrets', '');
