/*
 * 1.3, events and API input (issue 11, section 5): what a security review
 * found in the webhook paths and in what the API accepts.
 *
 *	- SES/SNS: each SES integration names its SNS topic (config.topic_arn);
 *	  messages from other topics, or older than broadcast_engine.sns_max_age,
 *	  are refused.
 *	- An event applies only to messages sent through the integration it
 *	  arrives for (parked events included).
 *	- Parked events are bounded per workspace and expire.
 *	- Workspace settings, rates, A/B durations, send times and contact
 *	  properties are checked wherever they are written (triggers), so that a
 *	  value no send can use is refused with 22023/22003 instead of breaking
 *	  every message later.
 *	- forget_contact leaves the address in no cursor, parked event or error
 *	  text.
 *
 * Every function here pins search_path and qualifies engine objects.
 */

/* ------------------------------------------------------------------------
 * Settings read from SQL
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Amazon SNS: the integration's topic, and the message's age
 * ------------------------------------------------------------------------ */

REVOKE ALL ON FUNCTION broadcast._check_sns_origin(jsonb, text) FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Events apply only to messages of the integration they arrive for
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Parked events: bounded per workspace, expiring
 * ------------------------------------------------------------------------ */

/* events dropped because the workspace had broadcast_engine.pending_events_limit waiting */
CREATE TABLE broadcast.pending_events_dropped (
	workspace_id	text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	dropped			bigint NOT NULL CHECK (dropped > 0),
	last_dropped_at	timestamptz NOT NULL
);
COMMENT ON TABLE broadcast.pending_events_dropped IS
	'Delivery events not parked because too many were waiting (broadcast_engine.pending_events_limit)';
ALTER TABLE broadcast.pending_events_dropped ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.pending_events_dropped
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.pending_events_dropped TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.pending_events_dropped TO broadcast_admin;
SELECT pg_catalog.pg_extension_config_dump('broadcast.pending_events_dropped', '');

/* expiry per workspace, when its events are parked */
CREATE INDEX pending_events_workspace_received_idx
	ON broadcast.pending_events (workspace_id, received_at);

/* ------------------------------------------------------------------------
 * Workspace settings: checked on every write
 * ------------------------------------------------------------------------ */

CREATE TRIGGER workspaces_check BEFORE INSERT OR UPDATE OF settings ON broadcast.workspaces
	FOR EACH ROW EXECUTE FUNCTION broadcast._workspaces_check();

/* ------------------------------------------------------------------------
 * Numbers the API takes: rates, A/B durations, send times
 * ------------------------------------------------------------------------ */

CREATE TRIGGER integrations_rate_check BEFORE INSERT OR UPDATE OF rate_per_second ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._rate_check();
CREATE TRIGGER shared_integrations_rate_check
	BEFORE INSERT OR UPDATE OF rate_per_second ON broadcast.shared_integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._rate_check();

CREATE TRIGGER broadcasts_check BEFORE INSERT OR UPDATE OF ab_duration, send_at ON broadcast.broadcasts
	FOR EACH ROW EXECUTE FUNCTION broadcast._broadcasts_check();

/* ------------------------------------------------------------------------
 * Contact properties: nested at most 28 levels
 * ------------------------------------------------------------------------ */

CREATE TRIGGER contacts_check BEFORE INSERT OR UPDATE OF properties ON broadcast.contacts
	FOR EACH ROW EXECUTE FUNCTION broadcast._contacts_check();

/* ------------------------------------------------------------------------
 * Erasure: the address nowhere but in the suppression (when kept)
 * ------------------------------------------------------------------------ */

