CREATE TABLE broadcast.suppressions (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	email			text NOT NULL CHECK (email = lower(email)),
	reason			text NOT NULL
		CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'soft_bounce', 'manual')),
	detail			text,
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, email)
);

COMMENT ON TABLE broadcast.suppressions IS 'Addresses never mailed again by this workspace';

CREATE TRIGGER suppressions_drop_queued AFTER INSERT ON broadcast.suppressions REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION broadcast._suppressions_drop_queued();

ALTER TABLE broadcast.suppressions ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.suppressions USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.suppressions TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.suppressions TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.suppressions', '');
