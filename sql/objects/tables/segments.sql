/* ------------------------------------------------------------------------
 * Tables and indexes
 * ------------------------------------------------------------------------ */
CREATE TABLE broadcast.segments (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	segment_id		text NOT NULL CHECK (broadcast.is_valid_id(segment_id)),
	name			text NOT NULL CHECK (name <> '' AND length(name) <= 200),
	definition		jsonb NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, segment_id)
);

COMMENT ON TABLE broadcast.segments IS
	'Saved audience definitions (create_segment); broadcasts send to lists and segments';

ALTER TABLE broadcast.segments ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.segments USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON broadcast.segments TO broadcast_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.segments TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.segments', '');
