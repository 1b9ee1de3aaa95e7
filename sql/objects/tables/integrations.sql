CREATE TABLE broadcast.integrations (
    workspace_id text NOT NULL,
    integration_id text NOT NULL,
    provider text NOT NULL,
    config jsonb DEFAULT '{}'::jsonb NOT NULL,
    rate_per_second numeric,
    shared_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    incarnation uuid DEFAULT gen_random_uuid() NOT NULL,
    CONSTRAINT integrations_config_check CHECK ((jsonb_typeof(config) = 'object'::text)),
    CONSTRAINT integrations_integration_id_check CHECK (broadcast.is_valid_id(integration_id)),
    CONSTRAINT integrations_provider_check CHECK ((provider = ANY (ARRAY['smtp'::text, 'sendgrid'::text, 'mailgun'::text, 'postmark'::text, 'ses'::text, 'sparkpost'::text, 'mailjet'::text, 'resend'::text]))),
    CONSTRAINT integrations_rate_per_second_check CHECK ((rate_per_second > (0)::numeric))
);

COMMENT ON COLUMN broadcast.integrations.rate_per_second IS 'This workspace''s limit; a shared integration also has an account-wide limit';

COMMENT ON COLUMN broadcast.integrations.incarnation IS 'Set when the row is created; keeps rate-limit and breaker state of a re-created integration apart';

ALTER TABLE ONLY broadcast.integrations
    ADD CONSTRAINT integrations_pkey PRIMARY KEY (workspace_id, integration_id);

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.integrations FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

CREATE TRIGGER integrations_rate_check BEFORE INSERT OR UPDATE OF rate_per_second ON broadcast.integrations FOR EACH ROW EXECUTE FUNCTION broadcast._rate_check();

CREATE TRIGGER integrations_target_check BEFORE INSERT OR UPDATE OF config, provider ON broadcast.integrations FOR EACH ROW EXECUTE FUNCTION broadcast._integration_target_trigger();

ALTER TABLE ONLY broadcast.integrations
    ADD CONSTRAINT integrations_shared_id_fkey FOREIGN KEY (shared_id) REFERENCES broadcast.shared_integrations(shared_id);

ALTER TABLE ONLY broadcast.integrations
    ADD CONSTRAINT integrations_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES broadcast.workspaces(workspace_id) ON DELETE CASCADE;

ALTER TABLE broadcast.integrations ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.integrations USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.integrations TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.integrations TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.integrations', '');

ALTER TABLE broadcast.integrations
	ADD COLUMN hourly_cap integer CHECK (hourly_cap BETWEEN 1 AND 100000000),
	ADD COLUMN daily_cap integer CHECK (daily_cap BETWEEN 1 AND 1000000000),
	ADD COLUMN warmup jsonb CHECK (jsonb_typeof(warmup) = 'object');

COMMENT ON COLUMN broadcast.integrations.hourly_cap IS
	'At most this many messages per hour of the workspace''s time zone (set_integration_caps)';

COMMENT ON COLUMN broadcast.integrations.daily_cap IS
	'At most this many messages per day of the workspace''s time zone (set_integration_caps)';

COMMENT ON COLUMN broadcast.integrations.warmup IS
	'Warm-up schedule {"start", "factor", "ceiling", "started_on"}: the daily limit grows by factor a day';

CREATE TRIGGER integrations_warmup_check BEFORE INSERT OR UPDATE OF warmup ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._warmup_check();
