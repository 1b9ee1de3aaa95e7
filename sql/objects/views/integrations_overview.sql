/* integrations as workspace roles see them: no secrets */

CREATE VIEW broadcast.integrations_overview WITH (security_barrier='true') AS
 SELECT i.workspace_id,
    i.integration_id,
    i.provider,
        CASE
            WHEN (i.shared_id IS NULL) THEN i.config
            ELSE '{}'::jsonb
        END AS config,
    i.rate_per_second,
    i.shared_id,
    ((s.secret IS NOT NULL) OR (sh.secret IS NOT NULL)) AS has_secret,
    i.created_at
   FROM ((broadcast.integrations i
     LEFT JOIN broadcast.integration_secrets s USING (workspace_id, integration_id))
     LEFT JOIN broadcast.shared_integrations sh ON ((sh.shared_id = i.shared_id)))
  WHERE broadcast.has_workspace_access(i.workspace_id);

GRANT SELECT ON TABLE broadcast.integrations_overview TO broadcast_user;
GRANT SELECT ON TABLE broadcast.integrations_overview TO broadcast_admin;
