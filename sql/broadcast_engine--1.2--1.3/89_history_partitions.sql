/*
 * message_history partitioned by month of message_id (issue 13): retention
 * drops a month's partition instead of deleting its rows.  The table is
 * rebuilt in its final form (tables/message_history.sql): the old one is
 * renamed, the new one created with a DEFAULT partition and a partition for
 * every month that has UUIDv7 rows, the rows moved with one INSERT ...
 * SELECT (ids that are not UUIDv7, from 1.0 and 1.1, land in DEFAULT
 * unless their random prefix falls in a month that has a partition), the
 * views that read it pointed at the new table, and the old one dropped.
 * Rows move before the trigger that applies parked events exists: they
 * are not new, and their events were applied when they first came.
 *
 * This rewrites the whole history in the update's transaction, while the
 * senders' inserts wait: on a large history, update at a quiet time.
 */

/*
 * A view of the user's own over the history cannot be recreated by an
 * extension script (it is not a member): say so before anything changes.
 */
DO $check$
DECLARE
	names text;
BEGIN
	SELECT string_agg(DISTINCT v.oid::regclass::text, ', ') INTO names
	  FROM pg_catalog.pg_depend d
	  JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
	  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
	 WHERE d.classid = 'pg_rewrite'::regclass
	   AND d.refobjid = 'broadcast.message_history'::regclass
	   AND v.oid <> 'broadcast.message_history'::regclass
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
					    WHERE e.classid = 'pg_class'::regclass AND e.objid = v.oid AND e.deptype = 'e');
	IF names IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'dependent_objects_still_exist',
			MESSAGE = format('cannot update broadcast_engine to 1.3: views of your own read broadcast.message_history: %s', names),
			HINT = 'The update rebuilds message_history as a partitioned table. Save and drop those views, update, then create them again.';
	END IF;
END
$check$;

ALTER TABLE broadcast.message_history RENAME TO message_history_12;
ALTER EXTENSION broadcast_engine DROP TABLE broadcast.message_history_12;

/* the views over the history, to recreate over the new table */
/* (a temporary table made here is an extension member until dropped, below) */
CREATE TEMP TABLE history_views AS
SELECT DISTINCT v.oid::regclass::text AS view_name, v.reloptions,
	   replace(pg_catalog.pg_get_viewdef(v.oid), 'message_history_12', 'message_history') AS def
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
 WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = 'broadcast.message_history_12'::regclass
   AND v.oid <> 'broadcast.message_history_12'::regclass;

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

CREATE TABLE broadcast.message_history_default PARTITION OF broadcast.message_history DEFAULT;
COMMENT ON TABLE broadcast.message_history_default IS 'History rows no monthly partition covers';
SELECT broadcast._history_partition_indexes('message_history_default');

/* a partition for each month with UUIDv7 rows (not extension members: see _history_add_partition) */
SELECT broadcast._history_add_partition(m)
  FROM (SELECT DISTINCT date_trunc('month', broadcast._uuid7_time(h.message_id) AT TIME ZONE 'UTC')::date AS m
		  FROM broadcast.message_history_12 h) x
 WHERE m IS NOT NULL AND m >= date '2000-01-01' AND m < now() + interval '2 years'
 ORDER BY m;

INSERT INTO broadcast.message_history
	(workspace_id, message_id, broadcast_id, template_id, template_version, variation, list_id,
	 email, integration_id, provider, provider_message_id, status, attempts, error, sent_at,
	 failed_at, delivered_at, opened_at, clicked_at, bounced_at, bounce_type, complained_at,
	 unsubscribed_at, created_at, open_machine, click_machine)
SELECT workspace_id, message_id, broadcast_id, template_id, template_version, variation, list_id,
	   email, integration_id, provider, provider_message_id, status, attempts, error, sent_at,
	   failed_at, delivered_at, opened_at, clicked_at, bounced_at, bounce_type, complained_at,
	   unsubscribed_at, created_at, open_machine, click_machine
  FROM broadcast.message_history_12;

DO $views$
DECLARE
	v record;
BEGIN
	FOR v IN SELECT * FROM history_views ORDER BY 1 LOOP
		EXECUTE format('CREATE OR REPLACE VIEW %s %s AS %s', v.view_name,
					   CASE WHEN v.reloptions IS NOT NULL
					   THEN format('WITH (%s)', array_to_string(v.reloptions, ', ')) END,
					   v.def);
	END LOOP;
END
$views$;
DROP TABLE history_views;

DROP TABLE broadcast.message_history_12;

CREATE TRIGGER message_history_apply_pending AFTER INSERT ON broadcast.message_history REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION broadcast._history_apply_pending();
CREATE TRIGGER history_forget_links AFTER UPDATE OF email ON broadcast.message_history
	FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
	EXECUTE FUNCTION broadcast._history_forget_links();
ALTER TABLE broadcast.message_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.message_history USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));
GRANT SELECT ON TABLE broadcast.message_history TO broadcast_user;
GRANT SELECT, INSERT, DELETE, UPDATE ON TABLE broadcast.message_history TO broadcast_admin;
SELECT pg_catalog.pg_extension_config_dump('broadcast.message_history', '');
SELECT pg_catalog.pg_extension_config_dump('broadcast.message_history_default', '');

/*
 * The scheduler makes this month's and the next months' partitions an hour
 * after the update (broadcast.instance.history_maintained_at), as after
 * CREATE EXTENSION; the DEFAULT partition takes the rows meanwhile, and
 * they move then.  SELECT broadcast.maintain_history() does it at once.
 */
