/* no workspace role can read these */

CREATE TABLE broadcast.integration_secrets (
	workspace_id	text NOT NULL,
	integration_id	text NOT NULL,
	secret			text,
	webhook_secret	text,
	PRIMARY KEY (workspace_id, integration_id),
	FOREIGN KEY (workspace_id, integration_id) REFERENCES broadcast.integrations ON DELETE CASCADE
);

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.integration_secrets FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.integration_secrets TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.integration_secrets', '');
