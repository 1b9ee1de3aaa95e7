/* messages claimed per pair and period (an hour or a day of the workspace's zone) */
CREATE TABLE broadcast.send_counts (
	workspace_id	text NOT NULL,
	integration_id	text NOT NULL,
	period			text NOT NULL CHECK (period IN ('day', 'hour')),
	starts_at		timestamptz NOT NULL,
	sent			integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
	PRIMARY KEY (workspace_id, integration_id, period, starts_at),
	FOREIGN KEY (workspace_id, integration_id) REFERENCES broadcast.integrations ON DELETE CASCADE
);

COMMENT ON TABLE broadcast.send_counts IS
	'Messages claimed per integration and hour or day, against its caps; kept 8 days';

ALTER TABLE broadcast.send_counts ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.send_counts
	USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON broadcast.send_counts TO broadcast_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.send_counts TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.send_counts', '');
