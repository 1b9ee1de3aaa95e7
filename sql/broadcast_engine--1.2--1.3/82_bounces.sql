/*
 * 1.3, bounces for SMTP senders (issue 15, "Bounces for SMTP senders").
 *
 *	- SMTP integrations take bounce_domain and bounce_local: the sender then
 *	  uses the VERP return path <bounce_local>+<token>@<bounce_domain>, the
 *	  token naming the message, signed with the workspace's secret
 *	  (src/bounce.c, src/provider_smtp.c).  Without bounce_domain nothing
 *	  changes.
 *	- broadcast.record_bounce_message(workspace_id, raw_message) reads a
 *	  returned message (RFC 3464 DSN, RFC 5965 ARF, common text bounces) as an
 *	  MTA's pipe or a mailbox fetcher delivers it, finds the message by its
 *	  VERP token or else its Message-ID, and feeds the event path of
 *	  record_events (_apply_events): hard and soft bounces, complaints,
 *	  suppression and the soft-bounce threshold.  A message it cannot
 *	  attribute is counted in broadcast.bounce_intake, not an error.
 *
 * Replaces broadcast._check_integration_config (from 40_events_input.sql).
 */

/* ------------------------------------------------------------------------
 * Integration settings: the VERP keys of smtp
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * The parser and the token check (src/bounce_sql.c)
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Counters
 * ------------------------------------------------------------------------ */

/* returned messages per workspace, and those that could not be attributed */
CREATE TABLE broadcast.bounce_intake (
	workspace_id		text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	received			bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
	attributed			bigint NOT NULL DEFAULT 0 CHECK (attributed >= 0),
	unattributed		bigint NOT NULL DEFAULT 0 CHECK (unattributed >= 0),
	last_received_at	timestamptz,
	last_unattributed_at timestamptz,
	last_unattributed_reason text
);
COMMENT ON TABLE broadcast.bounce_intake IS
	'Returned messages read by record_bounce_message: how many, and how many named no message of the workspace';
ALTER TABLE broadcast.bounce_intake ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.bounce_intake
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.bounce_intake TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.bounce_intake TO broadcast_admin;
SELECT pg_catalog.pg_extension_config_dump('broadcast.bounce_intake', '');

/* ------------------------------------------------------------------------
 * record_bounce_message
 * ------------------------------------------------------------------------ */

