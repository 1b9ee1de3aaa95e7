CREATE TABLE broadcast.message_history (
	workspace_id		text NOT NULL,
	message_id			uuid NOT NULL,
	broadcast_id		text,
	template_id			text,
	template_version	integer,
	variation			smallint,
	list_id				text,
	email				text NOT NULL,
	integration_id		text,
	provider			text,
	provider_message_id	text,
	status				text NOT NULL CHECK (status IN ('sent', 'failed')),
	attempts			smallint NOT NULL DEFAULT 1,
	error				text,
	sent_at				timestamptz,
	failed_at			timestamptz,
	delivered_at		timestamptz,
	opened_at			timestamptz,
	clicked_at			timestamptz,
	bounced_at			timestamptz,
	bounce_type			text CHECK (bounce_type IN ('hard', 'soft')),
	complained_at		timestamptz,
	unsubscribed_at		timestamptz,
	created_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, message_id)
);

COMMENT ON TABLE broadcast.message_history IS 'One row per message sent or failed; delivery events fill the event columns';

CREATE INDEX message_history_broadcast_template_idx ON broadcast.message_history USING btree (workspace_id, broadcast_id, template_id) WHERE (broadcast_id IS NOT NULL);

CREATE INDEX message_history_provider_id_idx ON broadcast.message_history USING btree (workspace_id, provider_message_id) WHERE (provider_message_id IS NOT NULL);

CREATE TRIGGER message_history_apply_pending AFTER INSERT ON broadcast.message_history REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION broadcast._history_apply_pending();

ALTER TABLE broadcast.message_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.message_history USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.message_history TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.message_history TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.message_history', '');

CREATE INDEX message_history_contact_idx
	ON broadcast.message_history (workspace_id, email);

ALTER TABLE broadcast.message_history
	ADD COLUMN open_machine boolean,
	ADD COLUMN click_machine boolean;

CREATE TRIGGER history_forget_links AFTER UPDATE OF email ON broadcast.message_history
	FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
	EXECUTE FUNCTION broadcast._history_forget_links();
