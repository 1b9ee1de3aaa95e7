/*
 * 84_segments: audiences defined by conditions, follow-ups and previews
 * (issue 17, "Segments").
 *
 * A segment is a saved definition: a tree of and/or/not over conditions on
 * contact fields and properties, list membership and engagement from
 * message_history.  broadcast._segment_sql() validates a definition and
 * compiles it into ONE boolean SQL expression over broadcast.contacts
 * (alias c); every value a user gave becomes a quoted literal (format %L),
 * never raw SQL.  The expression is evaluated set-based: by the
 * orchestrator inside its chunk statements (src/orchestrator.c), and by
 * preview_segment().
 *
 * A broadcast's audience is the union of its lists' active members and the
 * contacts its segments (or its follow-up condition) match, minus
 * suppressions and exclusion lists.  A contact reached through a segment must
 * still be an active member of at least one list of the workspace: a
 * segment never reaches someone who unsubscribed everywhere or never
 * confirmed (pending), and the list gives the message its unsubscribe link.
 */

/* ------------------------------------------------------------------------
 * Tables and indexes
 * ------------------------------------------------------------------------ */

CREATE TABLE broadcast.segments (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	segment_id		text NOT NULL CHECK (broadcast.is_valid_id(segment_id)),
	name			text NOT NULL CHECK (name <> '' AND length(name) <= 200),
	definition		jsonb NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, segment_id)
);
COMMENT ON TABLE broadcast.segments IS
	'Saved audience definitions (create_segment); broadcasts send to lists and segments';
ALTER TABLE broadcast.segments ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.segments
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.segments TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.segments TO broadcast_admin;
/* tenant data: pg_dump carries it (10_backup.sql) */
SELECT pg_catalog.pg_extension_config_dump('broadcast.segments', '');

ALTER TABLE broadcast.broadcasts
	ADD COLUMN segments text[] NOT NULL DEFAULT '{}',
	ADD COLUMN followup_of text,
	ADD COLUMN followup_condition text
		CHECK (followup_condition IN ('not_opened', 'not_clicked')),
	ADD CONSTRAINT broadcasts_followup_check
		CHECK ((followup_of IS NULL) = (followup_condition IS NULL));
/* a broadcast may now reach its audience through segments or a follow-up alone */
ALTER TABLE broadcast.broadcasts DROP CONSTRAINT broadcasts_lists_check;
ALTER TABLE broadcast.broadcasts ADD CONSTRAINT broadcasts_audience_check
	CHECK (cardinality(lists) >= 1 OR cardinality(segments) >= 1 OR followup_of IS NOT NULL);

/* engagement conditions probe one contact's history: (workspace, email) */
CREATE INDEX message_history_contact_idx
	ON broadcast.message_history (workspace_id, email);

/* equality on a property ("field": "properties.plan", "op": "eq") is a containment test */
CREATE INDEX contacts_properties_idx
	ON broadcast.contacts USING gin (properties jsonb_path_ops);

/* ------------------------------------------------------------------------
 * The compiler
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Segments: create, update, drop, list
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Broadcasts to lists and segments
 * ------------------------------------------------------------------------ */

/* replaced from 1.0: lists may be empty when segments are given */
DROP FUNCTION broadcast.create_broadcast(text, text, text, text[], text, text, text[], integer, text,
										 interval, boolean, text[]);

/* replaced from 1.0: segments; NULL arguments leave a setting as it is */
DROP FUNCTION broadcast.update_broadcast(text, text, text, text[], text, text, text[], integer, text,
										 interval, boolean, text[]);

/* ------------------------------------------------------------------------
 * Follow-ups
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Test sends
 * ------------------------------------------------------------------------ */

/*
 * A test send goes through the normal sender (its integration, rate limits,
 * rendering and history) as a broadcast of its own: the "test broadcast" of
 * the original, marked by test_of, created completed (it never expands)
 * with the original's templates pinned at their latest versions.  Its
 * history rows carry its id, so the original's statistics never count them,
 * and segment engagement conditions skip them.  Its queue rows name in
 * data_email the contact whose data renders the message.
 */
ALTER TABLE broadcast.broadcasts ADD COLUMN test_of text;
ALTER TABLE broadcast.email_queue ADD COLUMN data_email text;
COMMENT ON COLUMN broadcast.broadcasts.test_of IS
	'For a test-send broadcast (send_test): the broadcast it tests';
COMMENT ON COLUMN broadcast.email_queue.data_email IS
	'For a test send: the contact whose data renders the message (the recipient is not a contact)';

