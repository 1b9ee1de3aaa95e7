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

SELECT pg_catalog.pg_extension_config_dump('broadcast.tracked_events', '');

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.tracked_events TO broadcast_admin;
