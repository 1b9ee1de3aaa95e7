CREATE TABLE broadcast.lists (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	list_id			text NOT NULL CHECK (broadcast.is_valid_id(list_id)),
	name			text NOT NULL CHECK (name <> ''),
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, list_id)
);

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.lists FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

ALTER TABLE broadcast.lists ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.lists USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.lists TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.lists TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.lists', '');
