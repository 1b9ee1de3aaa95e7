/* one row per soft-bounced message: the threshold counts messages, so replays count once */

CREATE TABLE broadcast.soft_bounces (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	email			text NOT NULL,
	message_id		uuid NOT NULL,
	bounced_at		timestamptz NOT NULL,
	detail			text,
	PRIMARY KEY (workspace_id, email, message_id)
);

COMMENT ON TABLE broadcast.soft_bounces IS 'Soft bounces per address; soft_bounce_threshold of them suppress it';

ALTER TABLE broadcast.soft_bounces ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.soft_bounces USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.soft_bounces TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.soft_bounces TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.soft_bounces', '');
