/*
 * 86_optin_tracking: double opt-in and first-party open and click tracking
 * through the edge (issue 17).
 *
 * Double opt-in: subscribe(..., double_opt_in => true) leaves the member
 * 'pending', records the consent request and queues a confirmation message
 * in the workspace's opt-in broadcast ("double-opt-in", kind 'optin'),
 * which the senders send like any other, with their rate limits.  The
 * message's {{confirm_url}} is the edge's /c/<token>, signed with the
 * workspace's secret under its own MAC context; confirm_subscription()
 * makes the member 'active' and completes the consent record.
 *
 * Tracking: when the workspace's tracking setting (or the broadcast's
 * switch) is on, the senders rewrite the HTML's links to /t/c/<token> and
 * add the pixel /t/o/<token> (src/tracking.c); the edge calls track(),
 * which records the event through _apply_events(), the path of the
 * providers' events, and flags the opens and clicks of machines.
 *
 * Replaces _check_workspace_settings (40_events_input.sql: two more keys)
 * and subscribe (1.0: two more parameters).
 */

/* ------------------------------------------------------------------------
 * Tokens of other purposes, and the link rewriting (src/tracking_sql.c)
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Columns and tables
 * ------------------------------------------------------------------------ */

ALTER TABLE broadcast.broadcasts
	ADD COLUMN kind text NOT NULL DEFAULT 'broadcast' CHECK (kind IN ('broadcast', 'optin')),
	ADD COLUMN tracking boolean;
COMMENT ON COLUMN broadcast.broadcasts.kind IS
	'optin: the workspace''s double opt-in confirmations (subscribe with double_opt_in), sent like a broadcast';
COMMENT ON COLUMN broadcast.broadcasts.tracking IS
	'First-party open and click tracking; NULL: the workspace''s tracking setting';
/* the senders compose with these */
CREATE TRIGGER cache_generation_engagement
	AFTER UPDATE OF kind, tracking ON broadcast.broadcasts
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

/*
 * true: every open (click) the edge saw for the message was a machine's;
 * false: a person's was seen; NULL: none classified (a provider's event
 * only), counted as a person's.
 */
ALTER TABLE broadcast.message_history
	ADD COLUMN open_machine boolean,
	ADD COLUMN click_machine boolean;

/* one row per contact and list: the latest request and its confirmation */
CREATE TABLE broadcast.consents (
	workspace_id	text NOT NULL,
	email			text NOT NULL,
	list_id			text NOT NULL,
	method			text NOT NULL CHECK (method IN ('single', 'double')),
	requested_at	timestamptz NOT NULL DEFAULT now(),
	request_ip		inet,
	message_id		uuid,
	confirmed_at	timestamptz,
	confirm_ip		inet,
	PRIMARY KEY (workspace_id, email, list_id),
	FOREIGN KEY (workspace_id, email) REFERENCES broadcast.contacts ON DELETE CASCADE,
	FOREIGN KEY (workspace_id, list_id) REFERENCES broadcast.lists ON DELETE CASCADE,
	CHECK (method = 'double' OR message_id IS NULL)
);
CREATE INDEX consents_message_idx ON broadcast.consents (workspace_id, message_id)
	WHERE message_id IS NOT NULL;
COMMENT ON TABLE broadcast.consents IS
	'Subscription consent per contact and list: when and from where it was asked for and confirmed';

/*
 * What the edge saw, one row per message, event, link and kind of client
 * (hits counts repeats), so a message has at most 2 x (links + 1) rows.
 */
CREATE TABLE broadcast.tracked_events (
	workspace_id	text NOT NULL,
	message_id		uuid NOT NULL,
	broadcast_id	text,
	event			text NOT NULL CHECK (event IN ('opened', 'clicked')),
	link_index		integer NOT NULL CHECK (link_index BETWEEN -1 AND 9999),
	url				text,
	machine			boolean NOT NULL,
	machine_reason	text,
	first_at		timestamptz NOT NULL DEFAULT now(),
	last_at			timestamptz NOT NULL DEFAULT now(),
	hits			integer NOT NULL DEFAULT 1,
	PRIMARY KEY (workspace_id, message_id, event, link_index, machine),
	/* drop_workspace deletes the history by hand; these go with the workspace */
	FOREIGN KEY (workspace_id) REFERENCES broadcast.workspaces ON DELETE CASCADE
);
CREATE INDEX tracked_events_broadcast_idx ON broadcast.tracked_events (workspace_id, broadcast_id, event);
COMMENT ON TABLE broadcast.tracked_events IS
	'Opens and clicks seen by the edge (first-party tracking), machine ones flagged';

CREATE TRIGGER history_forget_links AFTER UPDATE OF email ON broadcast.message_history
	FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
	EXECUTE FUNCTION broadcast._history_forget_links();

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.consents, broadcast.tracked_events TO broadcast_admin;
/* data: pg_dump carries them (10_backup.sql) */
SELECT pg_catalog.pg_extension_config_dump('broadcast.consents', '');
SELECT pg_catalog.pg_extension_config_dump('broadcast.tracked_events', '');

/* ------------------------------------------------------------------------
 * Workspace settings: double_opt_in and tracking
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Double opt-in
 * ------------------------------------------------------------------------ */

/*
 * 1.0's subscribe with two more parameters.  double_opt_in: members not
 * active yet become 'pending' and are sent a confirmation (not members
 * already active; not more than one every 10 minutes per list; never to a
 * suppressed address); source_ip: where the subscription was asked for,
 * kept in the consent record.
 */
DROP FUNCTION broadcast.subscribe(text, text, text[], text);

/* ------------------------------------------------------------------------
 * Tracking
 * ------------------------------------------------------------------------ */

