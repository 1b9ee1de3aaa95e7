CREATE TABLE broadcast.workspace_grants (
    workspace_id text NOT NULL,
    role_name name NOT NULL
);

COMMENT ON TABLE broadcast.workspace_grants IS 'Which roles may use which workspace (see grant_workspace)';

COMMENT ON COLUMN broadcast.workspace_grants.role_name IS 'The role by name, as pg_dumpall --roles-only recreates it in another cluster';

ALTER TABLE ONLY broadcast.workspace_grants
    ADD CONSTRAINT workspace_grants_pkey PRIMARY KEY (workspace_id, role_name);

ALTER TABLE ONLY broadcast.workspace_grants
    ADD CONSTRAINT workspace_grants_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES broadcast.workspaces(workspace_id) ON DELETE CASCADE;

CREATE POLICY own_grants ON broadcast.workspace_grants USING ((( SELECT broadcast.is_admin() AS is_admin) OR (role_name IN ( SELECT r.rolname
   FROM pg_roles r
  WHERE pg_has_role(r.oid, 'MEMBER'::text)))));

ALTER TABLE broadcast.workspace_grants ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON TABLE broadcast.workspace_grants TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.workspace_grants TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.workspace_grants', '');
