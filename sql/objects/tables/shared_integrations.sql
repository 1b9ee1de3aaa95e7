/* a platform-owned provider account that several workspaces may send through */

CREATE TABLE broadcast.shared_integrations (
    shared_id text NOT NULL,
    provider text NOT NULL,
    config jsonb DEFAULT '{}'::jsonb NOT NULL,
    secret text,
    rate_per_second numeric,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    incarnation uuid DEFAULT gen_random_uuid() NOT NULL,
    CONSTRAINT shared_integrations_provider_check CHECK ((provider = ANY (ARRAY['smtp'::text, 'sendgrid'::text, 'mailgun'::text, 'postmark'::text, 'ses'::text, 'sparkpost'::text, 'mailjet'::text, 'resend'::text]))),
    CONSTRAINT shared_integrations_rate_per_second_check CHECK ((rate_per_second > (0)::numeric)),
    CONSTRAINT shared_integrations_shared_id_check CHECK (broadcast.is_valid_id(shared_id))
);

COMMENT ON COLUMN broadcast.shared_integrations.incarnation IS 'Set when the row is created; keeps rate-limit and breaker state of a re-created integration apart';

ALTER TABLE ONLY broadcast.shared_integrations
    ADD CONSTRAINT shared_integrations_pkey PRIMARY KEY (shared_id);

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON broadcast.shared_integrations FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

CREATE TRIGGER shared_integrations_rate_check BEFORE INSERT OR UPDATE OF rate_per_second ON broadcast.shared_integrations FOR EACH ROW EXECUTE FUNCTION broadcast._rate_check();

CREATE TRIGGER shared_integrations_target_check BEFORE INSERT OR UPDATE OF config, provider ON broadcast.shared_integrations FOR EACH ROW EXECUTE FUNCTION broadcast._integration_target_trigger();

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.shared_integrations TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.shared_integrations', '');
