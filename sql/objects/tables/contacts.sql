CREATE TABLE broadcast.contacts (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	email			text NOT NULL CHECK (email = lower(email) AND broadcast.is_valid_email(email)),
	first_name		text,
	last_name		text,
	language		text,
	timezone		text,
	properties		jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(properties) = 'object'),
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, email)
);

CREATE TRIGGER contacts_check BEFORE INSERT OR UPDATE OF properties ON broadcast.contacts FOR EACH ROW EXECUTE FUNCTION broadcast._contacts_check();

ALTER TABLE broadcast.contacts ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.contacts USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.contacts TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.contacts TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.contacts', '');

CREATE INDEX contacts_properties_idx
	ON broadcast.contacts USING gin (properties jsonb_path_ops);
