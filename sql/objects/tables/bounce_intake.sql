/* returned messages per workspace, and those that could not be attributed */
CREATE TABLE broadcast.bounce_intake (
	workspace_id		text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	received			bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
	attributed			bigint NOT NULL DEFAULT 0 CHECK (attributed >= 0),
	unattributed		bigint NOT NULL DEFAULT 0 CHECK (unattributed >= 0),
	last_received_at	timestamptz,
	last_unattributed_at timestamptz,
	last_unattributed_reason text
);

COMMENT ON TABLE broadcast.bounce_intake IS
	'Returned messages read by record_bounce_message: how many, and how many named no message of the workspace';

ALTER TABLE broadcast.bounce_intake ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.bounce_intake
	USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON broadcast.bounce_intake TO broadcast_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.bounce_intake TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.bounce_intake', '');
