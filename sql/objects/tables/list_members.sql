CREATE TABLE broadcast.list_members (
	workspace_id	text NOT NULL,
	list_id			text NOT NULL,
	email			text NOT NULL,
	status			text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, list_id, email),
	FOREIGN KEY (workspace_id, list_id) REFERENCES broadcast.lists ON DELETE CASCADE,
	FOREIGN KEY (workspace_id, email) REFERENCES broadcast.contacts ON DELETE CASCADE
);

CREATE INDEX list_members_contact_idx ON broadcast.list_members USING btree (workspace_id, email) INCLUDE (list_id, status);

ALTER TABLE broadcast.list_members ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.list_members USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.list_members TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.list_members TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.list_members', '');
