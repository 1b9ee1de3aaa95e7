CREATE TABLE broadcast.broadcasts (
    workspace_id text NOT NULL,
    broadcast_id text NOT NULL,
    name text NOT NULL,
    lists text[] NOT NULL,
    exclude_lists text[] DEFAULT '{}'::text[] NOT NULL,
    integration_id text NOT NULL,
    template_id text,
    variations text[],
    ab_sample_percent integer,
    ab_metric text DEFAULT 'open'::text NOT NULL,
    ab_duration interval DEFAULT '1 day'::interval NOT NULL,
    ab_auto boolean DEFAULT true NOT NULL,
    status text DEFAULT 'draft'::text NOT NULL,
    paused_from text,
    send_at timestamp with time zone,
    local_send_at timestamp without time zone,
    send_timezone text,
    recipient_timezone boolean DEFAULT false NOT NULL,
    winner_template_id text,
    total_recipients bigint DEFAULT 0 NOT NULL,
    test_recipients bigint DEFAULT 0 NOT NULL,
    enqueued_count bigint DEFAULT 0 NOT NULL,
    sent_count bigint DEFAULT 0 NOT NULL,
    failed_count bigint DEFAULT 0 NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    scheduled_at timestamp with time zone,
    started_at timestamp with time zone,
    test_completed_at timestamp with time zone,
    winner_selected_at timestamp with time zone,
    paused_at timestamp with time zone,
    completed_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    instance_nonce uuid DEFAULT broadcast._instance_nonce() NOT NULL,
    CONSTRAINT broadcasts_ab_metric_check CHECK ((ab_metric = ANY (ARRAY['open'::text, 'click'::text]))),
    CONSTRAINT broadcasts_ab_sample_percent_check CHECK (((ab_sample_percent >= 1) AND (ab_sample_percent <= 100))),
    CONSTRAINT broadcasts_broadcast_id_check CHECK (broadcast.is_valid_id(broadcast_id)),
    CONSTRAINT broadcasts_check CHECK (((template_id IS NULL) <> (variations IS NULL))),
    CONSTRAINT broadcasts_check1 CHECK (((variations IS NULL) OR (ab_sample_percent IS NOT NULL))),
    CONSTRAINT broadcasts_check2 CHECK (((status = 'paused'::text) = (paused_from IS NOT NULL))),
    CONSTRAINT broadcasts_lists_check CHECK ((cardinality(lists) >= 1)),
    CONSTRAINT broadcasts_name_check CHECK ((name <> ''::text)),
    CONSTRAINT broadcasts_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'scheduled'::text, 'processing'::text, 'testing'::text, 'test_completed'::text, 'winner_selected'::text, 'paused'::text, 'completed'::text, 'cancelled'::text, 'failed'::text]))),
    CONSTRAINT broadcasts_variations_check CHECK (((variations IS NULL) OR ((cardinality(variations) >= 2) AND (cardinality(variations) <= 8))))
);

COMMENT ON COLUMN broadcast.broadcasts.instance_nonce IS 'broadcast.instance.nonce when it was created or scheduled; another value means a restored row';

ALTER TABLE ONLY broadcast.broadcasts
    ADD CONSTRAINT broadcasts_pkey PRIMARY KEY (workspace_id, broadcast_id);

CREATE INDEX broadcasts_instance_idx ON broadcast.broadcasts USING btree (instance_nonce);

CREATE TRIGGER broadcasts_check BEFORE INSERT OR UPDATE OF ab_duration, send_at ON broadcast.broadcasts FOR EACH ROW EXECUTE FUNCTION broadcast._broadcasts_check();

CREATE TRIGGER broadcasts_queue_follows_integration AFTER UPDATE OF integration_id ON broadcast.broadcasts FOR EACH ROW WHEN ((old.integration_id IS DISTINCT FROM new.integration_id)) EXECUTE FUNCTION broadcast._queue_follows_integration();

CREATE TRIGGER broadcasts_stamp_nonce BEFORE UPDATE OF status ON broadcast.broadcasts FOR EACH ROW WHEN (((new.status = 'scheduled'::text) AND (old.status = ANY (ARRAY['draft'::text, 'scheduled'::text])))) EXECUTE FUNCTION broadcast._broadcasts_stamp_nonce();

CREATE TRIGGER cache_generation AFTER INSERT OR DELETE OR TRUNCATE ON broadcast.broadcasts FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

CREATE TRIGGER cache_generation_update AFTER UPDATE OF workspace_id, broadcast_id, name, lists, integration_id, template_id, variations ON broadcast.broadcasts FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

ALTER TABLE ONLY broadcast.broadcasts
    ADD CONSTRAINT broadcasts_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES broadcast.workspaces(workspace_id) ON DELETE CASCADE;

ALTER TABLE ONLY broadcast.broadcasts
    ADD CONSTRAINT broadcasts_workspace_id_integration_id_fkey FOREIGN KEY (workspace_id, integration_id) REFERENCES broadcast.integrations(workspace_id, integration_id);

ALTER TABLE broadcast.broadcasts ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.broadcasts USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.broadcasts TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.broadcasts TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.broadcasts', '');

ALTER TABLE broadcast.broadcasts
	ADD COLUMN segments text[] NOT NULL DEFAULT '{}',
	ADD COLUMN followup_of text,
	ADD COLUMN followup_condition text
		CHECK (followup_condition IN ('not_opened', 'not_clicked')),
	ADD CONSTRAINT broadcasts_followup_check
		CHECK ((followup_of IS NULL) = (followup_condition IS NULL));

ALTER TABLE broadcast.broadcasts DROP CONSTRAINT broadcasts_lists_check;

ALTER TABLE broadcast.broadcasts ADD CONSTRAINT broadcasts_audience_check
	CHECK (cardinality(lists) >= 1 OR cardinality(segments) >= 1 OR followup_of IS NOT NULL);

ALTER TABLE broadcast.broadcasts ADD COLUMN test_of text;

COMMENT ON COLUMN broadcast.broadcasts.test_of IS
	'For a test-send broadcast (send_test): the broadcast it tests';

ALTER TABLE broadcast.broadcasts
	ADD COLUMN kind text NOT NULL DEFAULT 'broadcast' CHECK (kind IN ('broadcast', 'optin')),
	ADD COLUMN tracking boolean;

COMMENT ON COLUMN broadcast.broadcasts.kind IS
	'optin: the workspace''s double opt-in confirmations (subscribe with double_opt_in), sent like a broadcast';

COMMENT ON COLUMN broadcast.broadcasts.tracking IS
	'First-party open and click tracking; NULL: the workspace''s tracking setting';

CREATE TRIGGER cache_generation_engagement
	AFTER UPDATE OF kind, tracking ON broadcast.broadcasts
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

/* after kind and tracking, as the update adds them (88_windows_caps.sql) */
ALTER TABLE broadcast.broadcasts
	ADD COLUMN send_window jsonb CHECK (jsonb_typeof(send_window) = 'object');

COMMENT ON COLUMN broadcast.broadcasts.send_window IS
	'Sending window {"from", "to", "days", "zone"} (set_sending_window); NULL: any time';

CREATE TRIGGER broadcasts_send_window_check BEFORE INSERT OR UPDATE OF send_window ON broadcast.broadcasts
	FOR EACH ROW EXECUTE FUNCTION broadcast._send_window_check();

/* after the columns of the earlier 1.3 parts, as the update adds them (89b_history_lean.sql) */
ALTER TABLE broadcast.broadcasts ADD COLUMN first_message_id uuid, ADD COLUMN last_message_id uuid;

COMMENT ON COLUMN broadcast.broadcasts.first_message_id IS 'Lowest message id of the broadcast''s history rows: its statistics read the history''s primary key from here';
COMMENT ON COLUMN broadcast.broadcasts.last_message_id IS 'Highest message id of the broadcast''s history rows';
