/* ------------------------------------------------------------------------
 * Tables
 *
 * Every table carries workspace_id and every primary key starts with it, so
 * the schema can be distributed by workspace later.
 * ------------------------------------------------------------------------ */

CREATE TABLE broadcast.workspaces (
	workspace_id	text PRIMARY KEY CHECK (broadcast.is_valid_id(workspace_id)),
	name			text NOT NULL CHECK (name <> ''),
	timezone		text NOT NULL DEFAULT 'UTC',
	settings		jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
	created_at		timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE broadcast.workspaces IS 'Tenants: every other table belongs to one';

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.workspaces FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

CREATE TRIGGER workspaces_audience_lock AFTER INSERT ON broadcast.workspaces REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION broadcast._audience_lock_row();

CREATE TRIGGER workspaces_check BEFORE INSERT OR UPDATE OF settings ON broadcast.workspaces FOR EACH ROW EXECUTE FUNCTION broadcast._workspaces_check();

CREATE POLICY workspace_isolation ON broadcast.workspaces USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

ALTER TABLE broadcast.workspaces ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON TABLE broadcast.workspaces TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.workspaces TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.workspaces', '');
