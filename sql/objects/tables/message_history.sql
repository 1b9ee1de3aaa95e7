/*
 * One row per message sent or failed, partitioned by month of its
 * message_id (a UUIDv7: the time it was queued, src/uuid7.c), so that
 * retention drops whole partitions instead of deleting rows
 * (maintain_history).  The DEFAULT partition takes rows no monthly partition
 * covers: ids that are not UUIDv7 (1.0 and 1.1 made random ones), and any
 * month before its partition exists.
 *
 * The root has no index of its own; every partition gets the same primary
 * key and indexes (_history_partition_indexes), and message_id being the
 * partition key keeps (workspace_id, message_id) unique over the table.  A
 * partitioned index here would break pg_restore of the partitions made at
 * run time (see _history_partition_indexes).  Those partitions are not
 * extension members: pg_dump writes them as plain tables with their rows.
 * The DEFAULT partition is a member, dumped through
 * pg_extension_config_dump.
 */
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
	status				text NOT NULL CONSTRAINT message_history_status_check CHECK (status IN ('sent', 'failed')),
	attempts			smallint NOT NULL DEFAULT 1,
	error				text,
	sent_at				timestamptz,
	failed_at			timestamptz,
	delivered_at		timestamptz,
	opened_at			timestamptz,
	clicked_at			timestamptz,
	bounced_at			timestamptz,
	bounce_type			text CONSTRAINT message_history_bounce_type_check CHECK (bounce_type IN ('hard', 'soft')),
	complained_at		timestamptz,
	unsubscribed_at		timestamptz,
	created_at			timestamptz NOT NULL DEFAULT now(),
	open_machine		boolean,
	click_machine		boolean
) PARTITION BY RANGE (message_id);

COMMENT ON TABLE broadcast.message_history IS 'One row per message sent or failed; delivery events fill the event columns';

CREATE TRIGGER message_history_apply_pending AFTER INSERT ON broadcast.message_history REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION broadcast._history_apply_pending();

CREATE TRIGGER history_forget_links AFTER UPDATE OF email ON broadcast.message_history
	FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
	EXECUTE FUNCTION broadcast._history_forget_links();

ALTER TABLE broadcast.message_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.message_history USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.message_history TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.message_history TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.message_history', '');

CREATE TABLE broadcast.message_history_default PARTITION OF broadcast.message_history DEFAULT;

COMMENT ON TABLE broadcast.message_history_default IS 'History rows no monthly partition covers';

SELECT broadcast._history_partition_indexes('message_history_default');

SELECT pg_catalog.pg_extension_config_dump('broadcast.message_history_default', '');
