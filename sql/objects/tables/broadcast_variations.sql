/*
 * template versions pinned when the broadcast is scheduled: one row per
 * variation, with the versions of the snippets it renders
 */

CREATE TABLE broadcast.broadcast_variations (
	workspace_id	text NOT NULL,
	broadcast_id	text NOT NULL,
	variation		smallint NOT NULL CHECK (variation BETWEEN 0 AND 7),
	template_id		text NOT NULL,
	version			integer NOT NULL,
	/* the snippets' versions, {"name": version}, pinned with the template */
	snippets		jsonb NOT NULL DEFAULT '{}'::jsonb,
	PRIMARY KEY (workspace_id, broadcast_id, variation),
	FOREIGN KEY (workspace_id, broadcast_id) REFERENCES broadcast.broadcasts ON DELETE CASCADE,
	FOREIGN KEY (workspace_id, template_id, version) REFERENCES broadcast.templates
);

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.broadcast_variations FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

ALTER TABLE broadcast.broadcast_variations ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.broadcast_variations USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.broadcast_variations TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.broadcast_variations TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.broadcast_variations', '');
