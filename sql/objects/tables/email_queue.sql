/*
 * One row per (broadcast, recipient) still to send.  Rows are small: ids and
 * the address, never rendered content.  A claim sets lease_until, which no
 * index covers (a HOT update), so a crashed sender's rows come due again by
 * themselves when it ends.
 */
CREATE TABLE broadcast.email_queue (
    workspace_id text NOT NULL,
    broadcast_id text NOT NULL,
    email text NOT NULL,
    integration_id text NOT NULL,
    list_id text NOT NULL,
    variation smallint DEFAULT 0 NOT NULL,
    message_id uuid NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts smallint DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_error text,
    lease_until timestamp with time zone,
    CONSTRAINT email_queue_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'sending'::text, 'dead'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.01', autovacuum_vacuum_threshold='10000', autovacuum_vacuum_insert_scale_factor='0.05', autovacuum_analyze_scale_factor='0.02', autovacuum_vacuum_cost_delay='0', fillfactor='50');

COMMENT ON COLUMN broadcast.email_queue.lease_until IS 'Set while a sender has the row in flight; the row is due again after it';

ALTER TABLE ONLY broadcast.email_queue
    ADD CONSTRAINT email_queue_pkey PRIMARY KEY (workspace_id, broadcast_id, email);

CREATE INDEX email_queue_due_idx ON broadcast.email_queue USING btree (workspace_id, integration_id, next_attempt_at) WHERE (status = ANY (ARRAY['pending'::text, 'sending'::text]));

ALTER TABLE broadcast.email_queue ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.email_queue USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.email_queue TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.email_queue TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.email_queue', '');

ALTER TABLE broadcast.email_queue ADD COLUMN data_email text;

COMMENT ON COLUMN broadcast.email_queue.data_email IS
	'For a test send: the contact whose data renders the message (the recipient is not a contact)';
