/*
 * Events for a message that has no history row yet: the provider can report
 * a delivery before the sender's batch commits.  Kept by our message id, or,
 * for events that carry only the provider's id, by that id and the
 * recipient's address (parked only while a queue row of that address is in
 * a sender's hands: other software's events on a shared provider account
 * stay "unknown").  The trigger on message_history applies them when the
 * row arrives; rows older than broadcast.apply_pending_events()'s max_age
 * are dropped.
 */

CREATE TABLE broadcast.pending_events (
    workspace_id text NOT NULL,
    message_id uuid,
    provider_message_id text,
    email text,
    event text NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    bounce_type text,
    detail text,
    integration_id text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    pending_id bigint NOT NULL,
    CONSTRAINT pending_events_bounce_type_check CHECK ((bounce_type = ANY (ARRAY['hard'::text, 'soft'::text]))),
    CONSTRAINT pending_events_check CHECK (((message_id IS NOT NULL) OR ((provider_message_id IS NOT NULL) AND (email IS NOT NULL)))),
    CONSTRAINT pending_events_event_check CHECK ((event = ANY (ARRAY['delivered'::text, 'opened'::text, 'clicked'::text, 'bounced'::text, 'complained'::text, 'unsubscribed'::text])))
);

COMMENT ON TABLE broadcast.pending_events IS 'Delivery events received before their message_history row was committed';

ALTER TABLE broadcast.pending_events ALTER COLUMN pending_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME broadcast.pending_events_pending_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY broadcast.pending_events
    ADD CONSTRAINT pending_events_pkey PRIMARY KEY (workspace_id, pending_id);

CREATE UNIQUE INDEX pending_events_key ON broadcast.pending_events USING btree (workspace_id, message_id, provider_message_id, email, event, occurred_at) NULLS NOT DISTINCT;

CREATE INDEX pending_events_provider_idx ON broadcast.pending_events USING btree (workspace_id, provider_message_id, email) WHERE (message_id IS NULL);

CREATE INDEX pending_events_received_idx ON broadcast.pending_events USING btree (received_at);

CREATE INDEX pending_events_workspace_received_idx ON broadcast.pending_events USING btree (workspace_id, received_at);

ALTER TABLE ONLY broadcast.pending_events
    ADD CONSTRAINT pending_events_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES broadcast.workspaces(workspace_id) ON DELETE CASCADE;

ALTER TABLE broadcast.pending_events ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.pending_events USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.pending_events TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.pending_events TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.pending_events', '');

SELECT pg_catalog.pg_extension_config_dump('broadcast.pending_events_pending_id_seq', '');
