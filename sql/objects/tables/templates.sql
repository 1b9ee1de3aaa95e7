CREATE TABLE broadcast.templates (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	template_id		text NOT NULL CHECK (broadcast.is_valid_id(template_id)),
	version			integer NOT NULL CHECK (version > 0),
	subject			text NOT NULL CHECK (subject <> ''),
	html			text NOT NULL,
	text_body		text,
	from_email		text CHECK (broadcast.is_valid_email(from_email)),
	from_name		text,
	reply_to		text CHECK (broadcast.is_valid_email(reply_to)),
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, template_id, version)
);

COMMENT ON TABLE broadcast.templates IS 'Immutable template versions; create_template adds one';

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.templates FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

CREATE TRIGGER templates_immutable BEFORE UPDATE ON broadcast.templates FOR EACH ROW EXECUTE FUNCTION broadcast._templates_immutable();

ALTER TABLE broadcast.templates ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.templates USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.templates TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.templates TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.templates', '');
