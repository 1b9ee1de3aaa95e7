/* events dropped because the workspace had broadcast_engine.pending_events_limit waiting */

CREATE TABLE broadcast.pending_events_dropped (
	workspace_id	text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	dropped			bigint NOT NULL CHECK (dropped > 0),
	last_dropped_at	timestamptz NOT NULL
);

COMMENT ON TABLE broadcast.pending_events_dropped IS 'Delivery events not parked because too many were waiting (broadcast_engine.pending_events_limit)';

ALTER TABLE broadcast.pending_events_dropped ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.pending_events_dropped USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.pending_events_dropped TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.pending_events_dropped TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.pending_events_dropped', '');
