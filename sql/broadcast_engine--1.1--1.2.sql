/* broadcast_engine--1.1--1.2.sql */

\echo Use "ALTER EXTENSION broadcast_engine UPDATE TO '1.2'" to load this file. \quit

/* ------------------------------------------------------------------------
 * Sender: cheaper claims and completions
 * ------------------------------------------------------------------------ */

/*
 * A claim leases a row by setting lease_until, a column no index covers, so
 * the update is a heap-only tuple (HOT) update: no new index entries per
 * claimed row.  fillfactor 50 leaves room on each page for the new version
 * of every row on it.  Rows leased under 1.1 (status 'sending', the lease
 * end in next_attempt_at) are still understood.
 */
ALTER TABLE broadcast.email_queue ADD COLUMN lease_until timestamptz;
COMMENT ON COLUMN broadcast.email_queue.lease_until IS
	'Set while a sender has the row in flight; the row is due again after it';
ALTER TABLE broadcast.email_queue SET (fillfactor = 50);

/* (workspace_id, broadcast_id, template_id) serves every query this one did */
DROP INDEX broadcast.message_history_broadcast_idx;

CREATE OR REPLACE VIEW broadcast.queue_health WITH (security_invoker = true) AS
SELECT q.workspace_id, q.integration_id,
	   count(*) FILTER (WHERE q.status IN ('pending', 'sending') AND NOT q.in_flight) AS pending,
	   count(*) FILTER (WHERE q.in_flight) AS in_flight,
	   count(*) FILTER (WHERE q.status IN ('pending', 'sending') AND NOT q.in_flight
						AND q.next_attempt_at <= now()) AS due,
	   count(*) FILTER (WHERE q.status = 'dead') AS dead,
	   min(q.next_attempt_at) FILTER (WHERE q.status IN ('pending', 'sending') AND NOT q.in_flight)
		   AS next_attempt_at
  FROM (SELECT e.*, coalesce(e.lease_until > now(), false)
				   OR (e.status = 'sending' AND e.next_attempt_at > now()) AS in_flight
		  FROM broadcast.email_queue e) q
 GROUP BY q.workspace_id, q.integration_id;

/* what each sender's batches cost, stage by stage (bench/send.py reads it) */
DROP VIEW broadcast.workers;
DROP FUNCTION broadcast.worker_status();
CREATE FUNCTION broadcast.worker_status(
	OUT kind text, OUT slot integer, OUT pid integer, OUT started_at timestamptz,
	OUT last_active timestamptz, OUT transactions bigint, OUT messages bigint,
	OUT batches bigint, OUT claim_ms float8, OUT render_ms float8, OUT send_ms float8,
	OUT record_ms float8)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_worker_status';
REVOKE ALL ON FUNCTION broadcast.worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.worker_status() TO broadcast_admin;

CREATE VIEW broadcast.workers AS
SELECT w.kind, w.slot, w.pid, w.started_at, w.last_active, w.transactions, w.messages,
	   w.batches, w.claim_ms, w.render_ms, w.send_ms, w.record_ms,
	   a.state, a.wait_event, a.query AS activity
  FROM broadcast.worker_status() w
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = w.pid;
GRANT SELECT ON broadcast.workers TO broadcast_admin;

/* time-ordered message ids: history inserts land at the index's right edge (src/uuid7.c) */
CREATE FUNCTION broadcast._uuid_v7()
RETURNS uuid
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_uuid_v7';

/* a row in flight is left to its sender, as when in flight meant status 'sending' */
CREATE OR REPLACE FUNCTION broadcast.unsubscribe_contact(
	workspace_id text,
	email text,
	list_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	addr text := lower(unsubscribe_contact.email);
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(unsubscribe_contact.workspace_id);
	PERFORM broadcast._check_email(unsubscribe_contact.email);
	/* the audience lock (docs/guarantees.md): also drop rows of a chunk in flight; later chunks see this */
	PERFORM broadcast._lock_audience(unsubscribe_contact.workspace_id);
	IF unsubscribe_contact.list_id IS NOT NULL THEN
		PERFORM broadcast._require_list(unsubscribe_contact.workspace_id, unsubscribe_contact.list_id);
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe_contact.workspace_id
		   AND m.list_id = unsubscribe_contact.list_id AND m.email = addr;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n = 0 THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('%s is not a member of list %s', quote_literal(addr),
								 quote_literal(unsubscribe_contact.list_id));
		END IF;
		/* queued mail for broadcasts to this list is no longer wanted */
		DELETE FROM broadcast.email_queue q
		 WHERE q.workspace_id = unsubscribe_contact.workspace_id AND q.email = addr
		   AND q.list_id = unsubscribe_contact.list_id AND q.status = 'pending'
		   AND (q.lease_until IS NULL OR q.lease_until <= now());
		RETURN n;
	END IF;

	IF NOT EXISTS (SELECT 1 FROM broadcast.contacts c
					WHERE c.workspace_id = unsubscribe_contact.workspace_id AND c.email = addr) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('contact %s does not exist in workspace %s', quote_literal(addr),
							 quote_literal(unsubscribe_contact.workspace_id));
	END IF;
	UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
	 WHERE m.workspace_id = unsubscribe_contact.workspace_id AND m.email = addr
	   AND m.status <> 'unsubscribed';
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO broadcast.suppressions (workspace_id, email, reason)
	VALUES (unsubscribe_contact.workspace_id, addr, 'unsubscribe')
	ON CONFLICT DO NOTHING;
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = unsubscribe_contact.workspace_id AND q.email = addr AND q.status = 'pending'
		   AND (q.lease_until IS NULL OR q.lease_until <= now());
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION broadcast.cancel_broadcast(workspace_id text, broadcast_id text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	dropped bigint;
BEGIN
	PERFORM broadcast._authorize_caller(cancel_broadcast.workspace_id);
	b := broadcast._get_broadcast(cancel_broadcast.workspace_id, cancel_broadcast.broadcast_id);
	IF b.status NOT IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused') THEN
		PERFORM broadcast._state_error(b, 'cancel', 'scheduled, sending or paused');
	END IF;
	/* rows a sender holds in flight finish on their own; history is kept */
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
	   AND q.status IN ('pending', 'dead')
	   AND (q.lease_until IS NULL OR q.lease_until <= now());
	GET DIAGNOSTICS dropped = ROW_COUNT;
	UPDATE broadcast.broadcasts x SET status = 'cancelled', paused_from = NULL,
		   cancelled_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET status = 'cancelled', lease_until = NULL, updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running', 'paused');
	RETURN dropped;
END
$$;

/* ------------------------------------------------------------------------
 * Providers
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Delivery events, suppression, unsubscribe, A/B winners
 * ------------------------------------------------------------------------ */

/*
 * What providers report after a message leaves (docs/events.md):
 *
 *	record_events(workspace, integration, payload jsonb [, headers])
 *	record_webhook(workspace, integration, body text [, headers])
 *		take a provider's webhook body as it arrives, verify its signature
 *		where the provider signs, map each event to message_history through
 *		the message id we sent (or the provider's id we stored), and apply
 *		the whole payload in a handful of set-based statements.  Applying an
 *		event keeps the earliest time per event column, so replays and
 *		out-of-order arrival change nothing.  Events for a message whose
 *		history row is not committed yet wait in pending_events and are
 *		applied by a trigger when it is.
 *	hard bounces and complaints suppress the address at once; soft bounces
 *		after the workspace's soft_bounce_threshold (default 3) messages.
 *	unsubscribe(token)	the RFC 8058 one-click endpoint's database side.
 */

/* a role for web fronts: may record events and unsubscribe, nothing else */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_webhook') THEN
		CREATE ROLE broadcast_webhook NOLOGIN;
	END IF;
END
$roles$;
GRANT USAGE ON SCHEMA broadcast TO broadcast_webhook;

/* C helpers (src/events_sql.c) */
CREATE FUNCTION broadcast._hmac_sha256(key bytea, data bytea)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_hmac_sha256';

CREATE FUNCTION broadcast._ct_equal(a bytea, b bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_ct_equal';

CREATE FUNCTION broadcast._rsa_verify(cert_pem text, data bytea, signature bytea, digest text)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_rsa_verify';

CREATE FUNCTION broadcast._check_certificate(cert_pem text)
RETURNS void
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_check_certificate';

/* one delivery event, as every provider's payload is normalised to */
CREATE TYPE broadcast.delivery_event AS (
	message_id			uuid,			/* ours, from custom args / metadata / tags */
	provider_message_id	text,			/* the provider's, when ours did not come back */
	email				text,			/* the recipient the event names (lower case) */
	event				text,			/* delivered opened clicked bounced complained unsubscribed ignored */
	occurred_at			timestamptz,
	bounce_type			text,			/* hard or soft, for bounced */
	detail				text			/* bounce reason, clicked URL... */
);

/* an event matched to its history row */
CREATE TYPE broadcast._matched_event AS (
	message_id			uuid,
	email				text,
	list_id				text,
	event				text,
	occurred_at			timestamptz,
	bounce_type			text,
	detail				text
);

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
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	message_id		uuid,
	provider_message_id text,
	email			text,
	event			text NOT NULL
		CHECK (event IN ('delivered', 'opened', 'clicked', 'bounced', 'complained', 'unsubscribed')),
	occurred_at		timestamptz NOT NULL,
	bounce_type		text CHECK (bounce_type IN ('hard', 'soft')),
	detail			text,
	integration_id	text,
	received_at		timestamptz NOT NULL DEFAULT now(),
	CHECK (message_id IS NOT NULL OR (provider_message_id IS NOT NULL AND email IS NOT NULL))
);
/* one row per event (replays park nothing new); also serves lookups by our id */
CREATE UNIQUE INDEX pending_events_key
	ON broadcast.pending_events (workspace_id, message_id, provider_message_id, email, event, occurred_at)
	NULLS NOT DISTINCT;
CREATE INDEX pending_events_provider_idx
	ON broadcast.pending_events (workspace_id, provider_message_id, email)
	WHERE message_id IS NULL;
CREATE INDEX pending_events_received_idx ON broadcast.pending_events (received_at);
COMMENT ON TABLE broadcast.pending_events IS
	'Delivery events received before their message_history row was committed';

/* one row per soft-bounced message: the threshold counts messages, so replays count once */
CREATE TABLE broadcast.soft_bounces (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	email			text NOT NULL,
	message_id		uuid NOT NULL,
	bounced_at		timestamptz NOT NULL,
	detail			text,
	PRIMARY KEY (workspace_id, email, message_id)
);
COMMENT ON TABLE broadcast.soft_bounces IS
	'Soft bounces per address; soft_bounce_threshold of them suppress it';

/* events that carry only the provider's id find their message through it */
CREATE INDEX message_history_provider_id_idx
	ON broadcast.message_history (workspace_id, provider_message_id)
	WHERE provider_message_id IS NOT NULL;

ALTER TABLE broadcast.pending_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.pending_events
	USING (broadcast.has_workspace_access(workspace_id));
ALTER TABLE broadcast.soft_bounces ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.soft_bounces
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.pending_events, broadcast.soft_bounces TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.pending_events, broadcast.soft_bounces
	TO broadcast_admin;

/* ------------------------------------------------------------------------
 * Parsing helpers
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._uuid_or_null(v text)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN v ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
				THEN v::uuid END
$$;

/* a JSON time: Unix seconds (number or numeric string) or ISO 8601; NULL when absent */
CREATE FUNCTION broadcast._event_time(v jsonb)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT CASE
		WHEN v IS NULL OR jsonb_typeof(v) NOT IN ('number', 'string') THEN NULL
		WHEN jsonb_typeof(v) = 'number' THEN to_timestamp((v #>> '{}')::float8)
		WHEN (v #>> '{}') ~ '^[0-9]{9,11}(\.[0-9]+)?$' THEN to_timestamp((v #>> '{}')::float8)
		WHEN (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
			THEN (v #>> '{}')::timestamptz
		/* no zone: UTC, whatever the session's TimeZone */
		WHEN (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$'
			THEN (v #>> '{}')::timestamp AT TIME ZONE 'UTC'
	END
$$;

/* a payload that may be one event object or an array of them, as a set */
CREATE FUNCTION broadcast._json_elements(p jsonb)
RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT e FROM jsonb_array_elements(CASE jsonb_typeof(p) WHEN 'array' THEN p
											 ELSE jsonb_build_array(p) END) e
	 WHERE jsonb_typeof(e) = 'object'
$$;

/* Resend tags come as an object, or as [{"name": ..., "value": ...}] */
CREATE FUNCTION broadcast._tag_value(tags jsonb, name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE jsonb_typeof(tags)
		WHEN 'object' THEN tags->>name
		WHEN 'array' THEN (SELECT t->>'value' FROM jsonb_array_elements(tags) t
							WHERE t->>'name' = name LIMIT 1)
	END
$$;

/* ------------------------------------------------------------------------
 * One normaliser per provider: payload -> delivery events.  The message id
 * we sent comes back under the key "message_id" (custom_args, user
 * variables, Metadata, EmailTags, rcpt_meta, tags) or as Mailjet's CustomID.
 * ------------------------------------------------------------------------ */

/* SendGrid Event Webhook: an array of events, custom_args as top-level keys */
CREATE FUNCTION broadcast._events_sendgrid(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(e->>'message_id'),
		   nullif(regexp_replace(e->>'sg_message_id', '\.(filter|recvd-).*$', ''), ''),
		   lower(e->>'email'),
		   CASE e->>'event'
				WHEN 'delivered' THEN 'delivered'
				WHEN 'open' THEN 'opened'
				WHEN 'click' THEN 'clicked'
				WHEN 'bounce' THEN 'bounced'
				WHEN 'spamreport' THEN 'complained'
				WHEN 'unsubscribe' THEN 'unsubscribed'
				WHEN 'group_unsubscribe' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'timestamp'), now()),
		   /* "blocked" is about the message or the sending IP, not the address */
		   CASE WHEN e->>'event' = 'bounce'
				THEN CASE WHEN e->>'type' = 'blocked' THEN 'soft' ELSE 'hard' END END,
		   coalesce(e->>'reason', e->>'url')
	  FROM broadcast._json_elements(p) e
$$;

/* Mailgun webhooks: {"signature": {...}, "event-data": {...}}, one event per request */
CREATE FUNCTION broadcast._events_mailgun(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(d->'user-variables'->>'message_id'),
		   nullif(btrim(d->'message'->'headers'->>'message-id', '<> '), ''),
		   lower(d->>'recipient'),
		   CASE d->>'event'
				WHEN 'delivered' THEN 'delivered'
				WHEN 'opened' THEN 'opened'
				WHEN 'clicked' THEN 'clicked'
				WHEN 'failed' THEN 'bounced'
				WHEN 'complained' THEN 'complained'
				WHEN 'unsubscribed' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(d->'timestamp'), now()),
		   CASE WHEN d->>'event' = 'failed'
				THEN CASE WHEN d->>'severity' = 'permanent' THEN 'hard' ELSE 'soft' END END,
		   coalesce(nullif(d->'delivery-status'->>'message', ''), d->'delivery-status'->>'description',
					d->>'reason', d->>'url')
	  FROM broadcast._json_elements(p) x
	 CROSS JOIN LATERAL (SELECT x->'event-data' AS d) y
	 WHERE jsonb_typeof(d) = 'object'
$$;

/* Postmark webhooks: one object per request (RecordType), or an array of them */
CREATE FUNCTION broadcast._events_postmark(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(e->'Metadata'->>'message_id'),
		   nullif(e->>'MessageID', ''),
		   lower(coalesce(e->>'Recipient', e->>'Email')),
		   CASE e->>'RecordType'
				WHEN 'Delivery' THEN 'delivered'
				WHEN 'Open' THEN 'opened'
				WHEN 'Click' THEN 'clicked'
				WHEN 'SpamComplaint' THEN 'complained'
				WHEN 'Bounce' THEN CASE
					WHEN e->>'Type' IN ('HardBounce', 'BadEmailAddress') THEN 'bounced'
					WHEN e->>'Type' IN ('SoftBounce', 'Transient', 'DnsError') THEN 'bounced'
					WHEN e->>'Type' = 'SpamComplaint' THEN 'complained'
					ELSE 'ignored' END
				/* a recipient's own unsubscribe; bounce and complaint suppressions have their own hooks */
				WHEN 'SubscriptionChange' THEN CASE
					WHEN (e->>'SuppressSending')::boolean AND e->>'SuppressionReason' = 'ManualSuppression'
					THEN 'unsubscribed' ELSE 'ignored' END
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(coalesce(e->'DeliveredAt', e->'BouncedAt', e->'ReceivedAt',
												   e->'ChangedAt')), now()),
		   CASE WHEN e->>'RecordType' = 'Bounce' THEN CASE
				WHEN e->>'Type' IN ('HardBounce', 'BadEmailAddress') THEN 'hard'
				WHEN e->>'Type' IN ('SoftBounce', 'Transient', 'DnsError') THEN 'soft' END END,
		   coalesce(e->>'Description', e->>'OriginalLink', e->>'Details')
	  FROM broadcast._json_elements(p) e
$$;

/*
 * An Amazon SES event (event publishing, "eventType") or feedback
 * notification ("notificationType"), the Message of an SNS notification.
 * Bounces and complaints list their recipients; the others name the
 * message's destination.
 */
CREATE FUNCTION broadcast._events_ses(m jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(m->'mail'->'tags'->'message_id'->>0),
		   m->'mail'->>'messageId',
		   lower(r.addr),
		   CASE k.kind
				WHEN 'Delivery' THEN 'delivered'
				WHEN 'Open' THEN 'opened'
				WHEN 'Click' THEN 'clicked'
				WHEN 'Bounce' THEN 'bounced'
				WHEN 'Complaint' THEN 'complained'
				WHEN 'Subscription' THEN CASE
					WHEN (m->'subscription'->'newTopicPreferences'->>'unsubscribeAll')::boolean
					THEN 'unsubscribed' ELSE 'ignored' END
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(coalesce(m->'delivery'->'timestamp', m->'open'->'timestamp',
				m->'click'->'timestamp', m->'bounce'->'timestamp', m->'complaint'->'timestamp',
				m->'subscription'->'timestamp', m->'mail'->'timestamp')), now()),
		   CASE WHEN k.kind = 'Bounce'
				THEN CASE WHEN m->'bounce'->>'bounceType' = 'Permanent' THEN 'hard' ELSE 'soft' END END,
		   coalesce(r.diag, m->'click'->>'link', m->'bounce'->>'bounceSubType',
					m->'complaint'->>'complaintFeedbackType')
	  FROM (SELECT coalesce(m->>'eventType', m->>'notificationType') AS kind) k
	 CROSS JOIN LATERAL (
		SELECT x->>'emailAddress' AS addr, x->>'diagnosticCode' AS diag
		  FROM jsonb_array_elements(CASE WHEN k.kind = 'Bounce' THEN m->'bounce'->'bouncedRecipients'
										  WHEN k.kind = 'Complaint' THEN m->'complaint'->'complainedRecipients'
										  END) x
		 WHERE k.kind IN ('Bounce', 'Complaint')
		UNION ALL
		SELECT m->'mail'->'destination'->>0, NULL
		 WHERE k.kind NOT IN ('Bounce', 'Complaint')) r
	 WHERE jsonb_typeof(m) = 'object'
$$;

/* SparkPost webhook batches: [{"msys": {"<category>_event": {...}}}, ...] */
CREATE FUNCTION broadcast._events_sparkpost(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(e->'rcpt_meta'->>'message_id'),
		   nullif(e->>'transmission_id', ''),
		   lower(e->>'rcpt_to'),
		   CASE e->>'type'
				WHEN 'delivery' THEN 'delivered'
				WHEN 'open' THEN 'opened'
				WHEN 'initial_open' THEN 'opened'
				WHEN 'amp_open' THEN 'opened'
				WHEN 'amp_initial_open' THEN 'opened'
				WHEN 'click' THEN 'clicked'
				WHEN 'amp_click' THEN 'clicked'
				WHEN 'bounce' THEN 'bounced'
				WHEN 'out_of_band' THEN 'bounced'
				WHEN 'spam_complaint' THEN 'complained'
				WHEN 'list_unsubscribe' THEN 'unsubscribed'
				WHEN 'link_unsubscribe' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'timestamp'), now()),
		   /* SparkPost's bounce classes 10, 30 and 90 are its hard bounces */
		   CASE WHEN e->>'type' IN ('bounce', 'out_of_band')
				THEN CASE WHEN e->>'bounce_class' IN ('10', '30', '90') THEN 'hard' ELSE 'soft' END END,
		   coalesce(e->>'reason', e->>'raw_reason', e->>'target_link_url')
	  FROM broadcast._json_elements(p) x
	 CROSS JOIN LATERAL (SELECT v AS e FROM jsonb_each(x->'msys') ev(k, v)
						  WHERE jsonb_typeof(x->'msys') = 'object' AND jsonb_typeof(v) = 'object'
						  LIMIT 1) y
$$;

/* Mailjet Event API: one event object, or an array when events are grouped */
CREATE FUNCTION broadcast._events_mailjet(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(e->>'CustomID'),
		   nullif(e->>'MessageID', ''),
		   lower(e->>'email'),
		   CASE e->>'event'
				WHEN 'sent' THEN 'delivered'
				WHEN 'open' THEN 'opened'
				WHEN 'click' THEN 'clicked'
				WHEN 'bounce' THEN 'bounced'
				WHEN 'spam' THEN 'complained'
				WHEN 'unsub' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'time'), now()),
		   CASE WHEN e->>'event' = 'bounce'
				THEN CASE WHEN (e->>'hard_bounce')::boolean THEN 'hard' ELSE 'soft' END END,
		   coalesce(nullif(e->>'error', ''), e->>'url', e->>'source')
	  FROM broadcast._json_elements(p) e
$$;

/* Resend webhooks (Svix): {"type": "email.delivered", "created_at": ..., "data": {...}} */
CREATE FUNCTION broadcast._events_resend(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT broadcast._uuid_or_null(broadcast._tag_value(d->'tags', 'message_id')),
		   nullif(d->>'email_id', ''),
		   lower(CASE jsonb_typeof(d->'to') WHEN 'array' THEN d->'to'->>0 ELSE d->>'to' END),
		   CASE e->>'type'
				WHEN 'email.delivered' THEN 'delivered'
				WHEN 'email.opened' THEN 'opened'
				WHEN 'email.clicked' THEN 'clicked'
				WHEN 'email.bounced' THEN 'bounced'
				WHEN 'email.complained' THEN 'complained'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(coalesce(d->'click'->'timestamp', e->'created_at')), now()),
		   CASE WHEN e->>'type' = 'email.bounced'
				THEN CASE WHEN coalesce(d->'bounce'->>'type', 'Permanent') = 'Permanent' THEN 'hard'
						  ELSE 'soft' END END,
		   coalesce(d->'bounce'->>'message', d->'click'->>'link')
	  FROM broadcast._json_elements(p) e
	 CROSS JOIN LATERAL (SELECT e->'data' AS d) y
$$;

/*
 * The generic form, for SMTP setups and custom pipelines:
 *	{"events": [{"message_id": "<uuid>", "event": "delivered", "timestamp": ...,
 *				 "bounce_type": "hard", "email": ..., "provider_message_id": ...,
 *				 "detail": ...}, ...]}
 * (or just the array).  It is ours, so it is checked strictly.
 */
CREATE FUNCTION broadcast._events_generic(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	evs jsonb := CASE WHEN jsonb_typeof(p) = 'object' AND p ? 'events' THEN p->'events' ELSE p END;
	bad record;
BEGIN
	IF jsonb_typeof(evs) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'generic event payload must be a JSON array of events or {"events": [...]}';
	END IF;
	SELECT x.ord, x.e INTO bad
	  FROM jsonb_array_elements(evs) WITH ORDINALITY AS x(e, ord)
	 WHERE jsonb_typeof(x.e) <> 'object'
		OR coalesce(x.e->>'event', x.e->>'type') IS NULL
		OR coalesce(x.e->>'event', x.e->>'type') NOT IN
			('delivered', 'delivery', 'opened', 'open', 'clicked', 'click', 'bounced', 'bounce',
			 'complained', 'complaint', 'unsubscribed', 'unsubscribe', 'deferred', 'sent')
		OR (x.e ? 'message_id' AND broadcast._uuid_or_null(x.e->>'message_id') IS NULL)
		OR (NOT x.e ? 'message_id' AND coalesce(x.e->>'provider_message_id', '') = '')
		OR (x.e ? 'bounce_type' AND coalesce(x.e->>'bounce_type', '') NOT IN ('hard', 'soft'))
		OR (x.e ? 'timestamp' AND broadcast._event_time(x.e->'timestamp') IS NULL)
	 ORDER BY x.ord LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid event at position %s', bad.ord),
			DETAIL = format('The element was %s.', left(bad.e::text, 200)),
			HINT = 'Each event is an object with "event" (delivered, opened, clicked, bounced, complained or unsubscribed), "message_id" (the UUID we sent) or "provider_message_id", and optionally "timestamp" (ISO 8601 or Unix seconds), "bounce_type" (hard or soft), "email" and "detail".';
	END IF;
	RETURN QUERY
	SELECT broadcast._uuid_or_null(e->>'message_id'), nullif(e->>'provider_message_id', ''),
		   lower(e->>'email'),
		   CASE coalesce(e->>'event', e->>'type')
				WHEN 'delivery' THEN 'delivered' WHEN 'open' THEN 'opened' WHEN 'click' THEN 'clicked'
				WHEN 'bounce' THEN 'bounced' WHEN 'complaint' THEN 'complained'
				WHEN 'unsubscribe' THEN 'unsubscribed' WHEN 'deferred' THEN 'ignored'
				WHEN 'sent' THEN 'ignored'
				ELSE coalesce(e->>'event', e->>'type') END,
		   coalesce(broadcast._event_time(e->'timestamp'), now()),
		   CASE WHEN coalesce(e->>'event', e->>'type') IN ('bounced', 'bounce')
				THEN coalesce(e->>'bounce_type', 'hard') END,
		   e->>'detail'
	  FROM jsonb_array_elements(evs) e;
END
$$;

/* ------------------------------------------------------------------------
 * Applying events
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._soft_bounce_threshold(p_workspace_id text)
RETURNS integer
LANGUAGE sql STABLE
AS $$
	SELECT coalesce(ceil((w.settings->>'soft_bounce_threshold')::numeric)::integer, 3)
	  FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id
$$;

/*
 * The audience lock (docs/guarantees.md, "Suppression and expansion"): a
 * transaction-level advisory lock per workspace, keyed
 * (hashtext('broadcast_engine.audience'), hashtext(workspace_id)).  Every
 * orchestrator chunk that inserts queue rows takes it SHARED before its
 * INSERT ... SELECT (src/orchestrator.c); whatever suppresses an address or
 * unsubscribes a member and then drops queue rows takes it EXCLUSIVE before
 * its first write.  So the drop waits for chunks in flight and, in READ
 * COMMITTED, sees their rows; chunks that start later wait for the commit
 * and see the suppression.  Chunks never wait for each other.
 */
CREATE FUNCTION broadcast._lock_audience(p_workspace_id text)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
	SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('broadcast_engine.audience'),
											 pg_catalog.hashtext(p_workspace_id))
$$;
REVOKE ALL ON FUNCTION broadcast._lock_audience(text) FROM PUBLIC;

/*
 * Applies normalised events to one workspace, set-based:
 *	1. match them to history rows (our id, else the provider's id + address)
 *	   and park the unmatched ones that carry our id in pending_events
 *	2. one UPDATE of message_history: the earliest time per event column
 *	3. soft bounces logged per message, then one statement suppressing
 *	   hard bounces, complainers and addresses over the soft threshold
 *	   (suppressions, list member status, pending queue rows)
 *	4. one statement for recipients' unsubscribes reported by the provider
 * Runs as the caller's function owner (callers are SECURITY DEFINER).
 */
CREATE FUNCTION broadcast._apply_events(
	p_workspace_id text,
	p_integration_id text,
	evs broadcast.delivery_event[],
	OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer,
	OUT unknown integer, OUT ignored integer, OUT suppressed integer)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m broadcast._matched_event[];
	n integer;
BEGIN
	received := coalesce(cardinality(evs), 0);
	changed := 0;
	suppressed := 0;

	/* 1. match */
	WITH e AS (
		SELECT x.* FROM unnest(evs) x WHERE x.event <> 'ignored'
	), r AS (
		SELECT e.*, coalesce(h1.message_id, h2.message_id) AS hid,
			   coalesce(h1.email, h2.email) AS hemail, coalesce(h1.list_id, h2.list_id) AS hlist
		  FROM e
		  LEFT JOIN broadcast.message_history h1
				 ON h1.workspace_id = p_workspace_id AND h1.message_id = e.message_id
		  LEFT JOIN LATERAL (
				SELECT h.message_id, h.email, h.list_id FROM broadcast.message_history h
				 WHERE e.message_id IS NULL AND e.provider_message_id IS NOT NULL
				   AND h.workspace_id = p_workspace_id
				   AND h.provider_message_id IN (e.provider_message_id, '<' || e.provider_message_id || '>')
				   AND (e.email IS NULL OR h.email = e.email)
				 LIMIT 1) h2 ON true
	), w AS (
		/*
		 * Unmatched: ours to wait for when it carries our id, or when it
		 * carries the provider's id and the address has a queue row in a
		 * sender's hands (sent, history row not committed yet)
		 */
		SELECT r.*,
			   r.hid IS NULL AND (r.message_id IS NOT NULL OR (
				   r.provider_message_id IS NOT NULL AND r.email IS NOT NULL
				   AND EXISTS (SELECT 1 FROM broadcast.broadcasts b
								 JOIN broadcast.email_queue q
								   ON q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
								WHERE b.workspace_id = p_workspace_id
								  AND b.status IN ('processing', 'testing', 'test_completed', 'winner_selected', 'paused')
								  AND q.email = r.email
								  AND (q.lease_until IS NOT NULL OR q.status = 'sending')))) AS wait
		  FROM r
	), park AS (
		INSERT INTO broadcast.pending_events AS p
			(workspace_id, message_id, provider_message_id, email, event, occurred_at, bounce_type, detail,
			 integration_id)
		SELECT p_workspace_id, w.message_id, CASE WHEN w.message_id IS NULL THEN w.provider_message_id END,
			   CASE WHEN w.message_id IS NULL THEN w.email END, w.event, w.occurred_at, w.bounce_type,
			   w.detail, p_integration_id
		  FROM w WHERE w.wait
		ON CONFLICT DO NOTHING
		RETURNING 1
	)
	SELECT coalesce(array_agg(ROW(w.hid, w.hemail, w.hlist, w.event, w.occurred_at, w.bounce_type,
								  w.detail)::broadcast._matched_event) FILTER (WHERE w.hid IS NOT NULL),
					'{}'),
		   count(*) FILTER (WHERE w.wait),
		   count(*) FILTER (WHERE w.hid IS NULL AND NOT w.wait),
		   (SELECT count(*) FROM park)
	  INTO m, pending, unknown, n
	  FROM w;
	applied := cardinality(m);
	SELECT count(*) FILTER (WHERE x.event = 'ignored') INTO ignored FROM unnest(evs) x;
	IF applied = 0 THEN
		RETURN;
	END IF;

	/*
	 * Events that may suppress or unsubscribe: the audience lock before any
	 * further write, so that steps 3 and 4 drop the rows of every committed
	 * chunk and later chunks see the suppression (see _lock_audience).
	 */
	IF EXISTS (SELECT 1 FROM unnest(m) x WHERE x.event IN ('bounced', 'complained', 'unsubscribed')) THEN
		PERFORM broadcast._lock_audience(p_workspace_id);
	END IF;

	/* 2. history: the earliest time of each event wins; a hard bounce beats a soft one */
	WITH a AS (
		SELECT x.message_id,
			   min(x.occurred_at) FILTER (WHERE x.event = 'delivered') AS delivered,
			   min(x.occurred_at) FILTER (WHERE x.event = 'opened') AS opened,
			   min(x.occurred_at) FILTER (WHERE x.event = 'clicked') AS clicked,
			   min(x.occurred_at) FILTER (WHERE x.event = 'bounced') AS bounced,
			   coalesce(bool_or(x.bounce_type = 'hard') FILTER (WHERE x.event = 'bounced'), false) AS hard,
			   min(x.occurred_at) FILTER (WHERE x.event = 'complained') AS complained,
			   min(x.occurred_at) FILTER (WHERE x.event = 'unsubscribed') AS unsubscribed
		  FROM unnest(m) x
		 GROUP BY x.message_id
	)
	UPDATE broadcast.message_history h
	   SET delivered_at = least(h.delivered_at, a.delivered),
		   opened_at = least(h.opened_at, a.opened),
		   clicked_at = least(h.clicked_at, a.clicked),
		   bounced_at = least(h.bounced_at, a.bounced),
		   bounce_type = CASE WHEN a.hard OR h.bounce_type = 'hard' THEN 'hard'
							  WHEN a.bounced IS NOT NULL THEN 'soft'
							  ELSE h.bounce_type END,
		   complained_at = least(h.complained_at, a.complained),
		   unsubscribed_at = least(h.unsubscribed_at, a.unsubscribed)
	  FROM a
	 WHERE h.workspace_id = p_workspace_id AND h.message_id = a.message_id
	   AND (least(h.delivered_at, a.delivered) IS DISTINCT FROM h.delivered_at
			OR least(h.opened_at, a.opened) IS DISTINCT FROM h.opened_at
			OR least(h.clicked_at, a.clicked) IS DISTINCT FROM h.clicked_at
			OR least(h.bounced_at, a.bounced) IS DISTINCT FROM h.bounced_at
			OR (a.hard AND h.bounce_type IS DISTINCT FROM 'hard')
			OR (a.bounced IS NOT NULL AND h.bounce_type IS NULL)
			OR least(h.complained_at, a.complained) IS DISTINCT FROM h.complained_at
			OR least(h.unsubscribed_at, a.unsubscribed) IS DISTINCT FROM h.unsubscribed_at);
	GET DIAGNOSTICS changed = ROW_COUNT;

	/* 3. suppression */
	IF EXISTS (SELECT 1 FROM unnest(m) x WHERE x.event IN ('bounced', 'complained')) THEN
		INSERT INTO broadcast.soft_bounces (workspace_id, email, message_id, bounced_at, detail)
		SELECT DISTINCT ON (x.email, x.message_id) p_workspace_id, x.email, x.message_id,
			   x.occurred_at, left(x.detail, 500)
		  FROM unnest(m) x
		 WHERE x.event = 'bounced' AND x.bounce_type = 'soft'
		 ORDER BY x.email, x.message_id, x.occurred_at
		ON CONFLICT DO NOTHING;

		WITH t AS (
			SELECT DISTINCT ON (c.email) c.email, c.reason, c.detail
			  FROM (SELECT x.email, CASE x.event WHEN 'complained' THEN 'complaint' ELSE 'hard_bounce' END AS reason,
						   left(x.detail, 500) AS detail, CASE x.event WHEN 'complained' THEN 1 ELSE 2 END AS rank
					  FROM unnest(m) x
					 WHERE x.event = 'complained' OR (x.event = 'bounced' AND x.bounce_type = 'hard')
					UNION ALL
					SELECT s.email, 'soft_bounce', format('%s soft bounces', count(*)), 3
					  FROM broadcast.soft_bounces s
					 WHERE s.workspace_id = p_workspace_id
					   AND s.email IN (SELECT x.email FROM unnest(m) x
										WHERE x.event = 'bounced' AND x.bounce_type = 'soft')
					 GROUP BY s.email
					HAVING count(*) >= broadcast._soft_bounce_threshold(p_workspace_id)) c
			 ORDER BY c.email, c.rank
		), sup AS (
			INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
			SELECT p_workspace_id, t.email, t.reason, t.detail FROM t
			ON CONFLICT DO NOTHING
			RETURNING 1
		), members AS (
			UPDATE broadcast.list_members lm
			   SET status = CASE t.reason WHEN 'complaint' THEN 'complained' ELSE 'bounced' END,
				   updated_at = now()
			  FROM t
			 WHERE lm.workspace_id = p_workspace_id AND lm.email = t.email
			   AND lm.status IN ('active', 'pending')
			RETURNING 1
		), queue AS (
			/* rows a sender holds in flight finish on their own */
			DELETE FROM broadcast.email_queue q
			 USING t, broadcast.broadcasts b
			 WHERE b.workspace_id = p_workspace_id
			   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
			   AND q.workspace_id = p_workspace_id AND q.broadcast_id = b.broadcast_id AND q.email = t.email
			   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now())
			RETURNING 1
		)
		/* every data-modifying CTE runs, whether or not it is read */
		SELECT count(*) INTO suppressed FROM sup;
	END IF;

	/* 4. the recipient unsubscribed through the provider: from the message's list, or everywhere */
	IF EXISTS (SELECT 1 FROM unnest(m) x WHERE x.event = 'unsubscribed') THEN
		WITH u AS (
			SELECT DISTINCT x.email, x.list_id FROM unnest(m) x WHERE x.event = 'unsubscribed'
		), members AS (
			UPDATE broadcast.list_members lm SET status = 'unsubscribed', updated_at = now()
			  FROM u
			 WHERE lm.workspace_id = p_workspace_id AND lm.email = u.email
			   AND (u.list_id IS NULL OR lm.list_id = u.list_id)
			   AND lm.status IN ('active', 'pending')
			RETURNING 1
		), sup AS (
			INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
			SELECT p_workspace_id, u.email, 'unsubscribe', 'reported by the provider'
			  FROM u WHERE u.list_id IS NULL
			ON CONFLICT DO NOTHING
			RETURNING 1
		), queue AS (
			DELETE FROM broadcast.email_queue q
			 USING u, broadcast.broadcasts b
			 WHERE b.workspace_id = p_workspace_id
			   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
			   AND q.workspace_id = p_workspace_id AND q.broadcast_id = b.broadcast_id AND q.email = u.email
			   AND (u.list_id IS NULL OR q.list_id = u.list_id)
			   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now())
			RETURNING 1
		)
		SELECT suppressed + count(*) INTO suppressed FROM sup;
	END IF;
END
$$;

/*
 * Applies pending events whose history rows exist now, for one workspace
 * (or all when NULL) and, when since is given, only those received after it.
 */
CREATE FUNCTION broadcast._apply_pending(p_workspace_id text, p_since timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	w record;
	evs broadcast.delivery_event[];
	total bigint := 0;
BEGIN
	FOR w IN
		SELECT p.workspace_id, min(p.integration_id) AS integration_id
		  FROM broadcast.pending_events p
		 WHERE (p_workspace_id IS NULL OR p.workspace_id = p_workspace_id)
		   AND (p_since IS NULL OR p.received_at >= p_since)
		   AND EXISTS (SELECT 1 FROM broadcast.message_history h
						WHERE h.workspace_id = p.workspace_id
						  AND (h.message_id = p.message_id
							   OR (p.message_id IS NULL AND h.email = p.email
								   AND h.provider_message_id IN (p.provider_message_id,
																 '<' || p.provider_message_id || '>'))))
		 GROUP BY p.workspace_id
	LOOP
		WITH gone AS (
			DELETE FROM broadcast.pending_events p
			 WHERE p.workspace_id = w.workspace_id
			   AND (p_since IS NULL OR p.received_at >= p_since)
			   AND EXISTS (SELECT 1 FROM broadcast.message_history h
							WHERE h.workspace_id = p.workspace_id
							  AND (h.message_id = p.message_id
								   OR (p.message_id IS NULL AND h.email = p.email
									   AND h.provider_message_id IN (p.provider_message_id,
																	 '<' || p.provider_message_id || '>'))))
			RETURNING p.*
		)
		SELECT array_agg(ROW(g.message_id, g.provider_message_id, g.email, g.event, g.occurred_at,
							 g.bounce_type, g.detail)::broadcast.delivery_event)
		  INTO evs FROM gone g;
		IF evs IS NOT NULL THEN
			PERFORM broadcast._apply_events(w.workspace_id, w.integration_id, evs);
			total := total + cardinality(evs);
		END IF;
	END LOOP;
	RETURN total;
END
$$;

/*
 * When the sender commits a batch's history rows, events that arrived
 * before them are applied in the same transaction.  Statement level, with
 * the batch as a transition table: one cheap probe per batch while nothing
 * is pending.
 *
 * Bounces, complaints and unsubscribes need the workspace's audience lock
 * (_lock_audience), and the sender's statement has already updated the
 * broadcast's counters: waiting here for a chunk of the same broadcast,
 * which updates that row before it commits, would deadlock.  So the trigger
 * only tries the lock; when a chunk holds it, those events stay parked and
 * the next record_events call of the workspace (or apply_pending_events)
 * applies them.
 */
CREATE FUNCTION broadcast._history_apply_pending()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	w record;
	evs broadcast.delivery_event[];
	locked boolean;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.pending_events) THEN
		RETURN NULL;
	END IF;
	FOR w IN
		SELECT p.workspace_id, p.integration_id,
			   bool_or(p.event IN ('bounced', 'complained', 'unsubscribed')) AS suppressing
		  FROM new_rows n
		  JOIN broadcast.pending_events p
			ON p.workspace_id = n.workspace_id
		   AND (p.message_id = n.message_id
				OR (p.message_id IS NULL AND p.email = n.email
					AND n.provider_message_id IN (p.provider_message_id, '<' || p.provider_message_id || '>')))
		 GROUP BY p.workspace_id, p.integration_id
	LOOP
		locked := false;
		IF w.suppressing THEN
			locked := pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('broadcast_engine.audience'),
														   pg_catalog.hashtext(w.workspace_id));
		END IF;
		WITH gone AS (
			DELETE FROM broadcast.pending_events p
			 USING new_rows n
			 WHERE p.workspace_id = w.workspace_id AND n.workspace_id = w.workspace_id
			   AND (p.message_id = n.message_id
					OR (p.message_id IS NULL AND p.email = n.email
						AND n.provider_message_id IN (p.provider_message_id,
													  '<' || p.provider_message_id || '>')))
			   AND p.integration_id IS NOT DISTINCT FROM w.integration_id
			   AND (locked OR p.event NOT IN ('bounced', 'complained', 'unsubscribed'))
			RETURNING p.*
		)
		SELECT array_agg(ROW(g.message_id, g.provider_message_id, g.email, g.event, g.occurred_at,
							 g.bounce_type, g.detail)::broadcast.delivery_event)
		  INTO evs FROM gone g;
		IF evs IS NOT NULL THEN
			PERFORM broadcast._apply_events(w.workspace_id, w.integration_id, evs);
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;

CREATE TRIGGER message_history_apply_pending
	AFTER INSERT ON broadcast.message_history
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._history_apply_pending();

/*
 * For pg_cron or an operator: applies every pending event whose history
 * row exists, and drops the ones older than max_age (their message id was
 * never ours, or its message was never recorded).
 */
CREATE FUNCTION broadcast.apply_pending_events(max_age interval DEFAULT '7 days',
											   OUT applied bigint, OUT expired bigint)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('apply pending delivery events');
	IF max_age IS NULL OR max_age < interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'max_age must be a non-negative interval';
	END IF;
	applied := broadcast._apply_pending(NULL, NULL);
	DELETE FROM broadcast.pending_events p WHERE p.received_at < now() - max_age;
	GET DIAGNOSTICS expired = ROW_COUNT;
END
$$;
REVOKE ALL ON FUNCTION broadcast.apply_pending_events(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.apply_pending_events(interval) TO broadcast_admin;

/* ------------------------------------------------------------------------
 * Webhook signatures
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._signature_error(provider text, detail text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'invalid_authorization_specification',
		MESSAGE = format('%s webhook signature verification failed', provider),
		DETAIL = detail,
		HINT = 'Check that the signing key stored with broadcast.set_webhook_secret() is the one the provider uses, and pass the payload exactly as received.';
END
$$;

/* rejects a signature timestamp too far from now (broadcast_engine.webhook_tolerance) */
CREATE FUNCTION broadcast._check_signature_age(provider text, ts text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	/* shown with a unit ("5min"), which interval input understands */
	tolerance integer := coalesce(extract(epoch FROM nullif(current_setting('broadcast_engine.webhook_tolerance', true), '')::interval)::integer, 300);
	skew numeric;
BEGIN
	IF ts IS NULL OR ts !~ '^[0-9]{1,12}$' THEN
		PERFORM broadcast._signature_error(provider, format('The signature timestamp %s is not a Unix time.',
															 broadcast._show(ts)));
	END IF;
	skew := abs(extract(epoch FROM now()) - ts::numeric);
	IF tolerance > 0 AND skew > tolerance THEN
		PERFORM broadcast._signature_error(provider,
			format('The signature timestamp is %s seconds away from the server''s clock; at most %s are accepted (broadcast_engine.webhook_tolerance).',
				   floor(skew), tolerance));
	END IF;
END
$$;

/* Mailgun: hex HMAC-SHA256 of timestamp || token under the webhook signing key, in the body */
CREATE FUNCTION broadcast._verify_mailgun(payload jsonb, signing_key text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	sig jsonb := payload->'signature';
BEGIN
	IF jsonb_typeof(sig) IS DISTINCT FROM 'object' OR sig->>'signature' IS NULL
	   OR sig->>'token' IS NULL OR sig->>'timestamp' IS NULL THEN
		PERFORM broadcast._signature_error('mailgun', 'The payload has no "signature" object with timestamp, token and signature.');
	END IF;
	IF (sig->>'signature') !~ '^[0-9a-fA-F]{64}$'
	   OR NOT broadcast._ct_equal(
			broadcast._hmac_sha256(convert_to(signing_key, 'UTF8'),
								   convert_to((sig->>'timestamp') || (sig->>'token'), 'UTF8')),
			decode(sig->>'signature', 'hex')) THEN
		PERFORM broadcast._signature_error('mailgun', 'The signature does not match the payload.');
	END IF;
	PERFORM broadcast._check_signature_age('mailgun', sig->>'timestamp');
END
$$;

/*
 * Svix (Resend): base64 HMAC-SHA256 of "svix-id.svix-timestamp.body" under
 * the secret after "whsec_", in the svix-signature header: a space-separated
 * list of "v1,<base64>", any of which may match (secret rotation).
 */
CREATE FUNCTION broadcast._verify_svix(body text, headers jsonb, secret text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	h jsonb;
	msg_id text;
	ts text;
	sigs text;
	expected bytea;
	ok boolean := false;
	s text;
BEGIN
	SELECT coalesce(jsonb_object_agg(lower(k), v), '{}') INTO h
	  FROM jsonb_each_text(CASE jsonb_typeof(headers) WHEN 'object' THEN headers ELSE '{}' END) AS x(k, v);
	msg_id := coalesce(h->>'svix-id', h->>'webhook-id');
	ts := coalesce(h->>'svix-timestamp', h->>'webhook-timestamp');
	sigs := coalesce(h->>'svix-signature', h->>'webhook-signature');
	IF msg_id IS NULL OR ts IS NULL OR sigs IS NULL THEN
		PERFORM broadcast._signature_error('resend', 'The svix-id, svix-timestamp and svix-signature headers are required.');
	END IF;
	expected := broadcast._hmac_sha256(decode(substr(secret, 7), 'base64'),
									   convert_to(msg_id || '.' || ts || '.' || body, 'UTF8'));
	FOREACH s IN ARRAY regexp_split_to_array(btrim(sigs), '\s+') LOOP
		IF s ~ '^v1,[A-Za-z0-9+/]+={0,2}$' AND length(s) = 47
		   AND broadcast._ct_equal(expected, decode(substr(s, 4), 'base64')) THEN
			ok := true;
		END IF;
	END LOOP;
	IF NOT ok THEN
		PERFORM broadcast._signature_error('resend', 'No v1 signature in svix-signature matches the body.');
	END IF;
	PERFORM broadcast._check_signature_age('resend', ts);
END
$$;

/*
 * Amazon SNS: RSA over the message's canonical string (name\nvalue\n for
 * the signed fields in order), SHA1 for SignatureVersion 1 and SHA256 for
 * 2, checked with the signing certificate stored with the integration.
 */
CREATE FUNCTION broadcast._verify_sns(payload jsonb, cert_pem text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	fields text[];
	f text;
	canonical text := '';
	sig bytea;
BEGIN
	IF payload->>'Signature' IS NULL OR payload->>'SignatureVersion' IS NULL THEN
		PERFORM broadcast._signature_error('ses', 'The SNS message has no Signature.');
	END IF;
	IF payload->>'SignatureVersion' NOT IN ('1', '2') THEN
		PERFORM broadcast._signature_error('ses', format('SignatureVersion %s is not supported.',
														  broadcast._show(payload->>'SignatureVersion')));
	END IF;
	IF payload->>'Type' = 'Notification' THEN
		fields := ARRAY['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
	ELSE
		fields := ARRAY['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
	END IF;
	FOREACH f IN ARRAY fields LOOP
		IF payload->>f IS NOT NULL THEN
			canonical := canonical || f || E'\n' || (payload->>f) || E'\n';
		ELSIF f <> 'Subject' THEN
			PERFORM broadcast._signature_error('ses', format('The SNS message has no %s.', f));
		END IF;
	END LOOP;
	IF (payload->>'Signature') !~ '^[A-Za-z0-9+/]+={0,2}$' THEN
		PERFORM broadcast._signature_error('ses', 'The Signature is not base64.');
	END IF;
	sig := decode(payload->>'Signature', 'base64');
	IF NOT broadcast._rsa_verify(cert_pem, convert_to(canonical, 'UTF8'), sig,
								 CASE payload->>'SignatureVersion' WHEN '1' THEN 'sha1' ELSE 'sha256' END) THEN
		PERFORM broadcast._signature_error('ses', 'The Signature does not match the message.');
	END IF;
END
$$;

/* ------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------ */

/* a web front (broadcast_webhook) may post for any workspace; others need a grant */
CREATE FUNCTION broadcast._authorize_webhook(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_has_role(session_user, 'broadcast_webhook', 'MEMBER') THEN
		PERFORM broadcast._check_id('workspace', p_workspace_id);
		IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
		END IF;
	ELSE
		PERFORM broadcast._authorize_caller(p_workspace_id);
	END IF;
END
$$;

/*
 * Stores (or with NULL, clears) the key an integration's webhooks are
 * signed with: Mailgun's HTTP webhook signing key, Resend's "whsec_..."
 * secret, or for SES the PEM certificate SNS signs with.
 */
CREATE FUNCTION broadcast.set_webhook_secret(workspace_id text, integration_id text, secret text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	prov text;
BEGIN
	PERFORM broadcast._authorize_caller(set_webhook_secret.workspace_id);
	PERFORM broadcast._check_id('integration', set_webhook_secret.integration_id);
	SELECT i.provider INTO prov FROM broadcast.integrations i
	 WHERE i.workspace_id = set_webhook_secret.workspace_id
	   AND i.integration_id = set_webhook_secret.integration_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(set_webhook_secret.integration_id),
							 quote_literal(set_webhook_secret.workspace_id));
	END IF;
	IF prov NOT IN ('mailgun', 'resend', 'ses') THEN
		RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
			MESSAGE = format('%s webhooks carry no signature this engine verifies', prov),
			HINT = 'Authenticate the webhook endpoint in the web front (for example with HTTP Basic credentials in the webhook URL); see docs/events.md.';
	END IF;
	IF secret IS NOT NULL THEN
		IF prov = 'mailgun' AND (btrim(secret) = '' OR secret ~ '[\x00-\x20\x7f]') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'invalid Mailgun webhook signing key',
				HINT = 'Copy the "HTTP webhook signing key" from the Mailgun dashboard.';
		ELSIF prov = 'resend' AND (secret !~ '^whsec_[A-Za-z0-9+/]+={0,2}$' OR length(secret) % 4 <> 2) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'invalid Resend webhook signing secret',
				HINT = 'It is "whsec_" followed by base64, as shown on the webhook''s page in Resend.';
		ELSIF prov = 'ses' THEN
			PERFORM broadcast._check_certificate(secret);
		END IF;
	END IF;
	INSERT INTO broadcast.integration_secrets AS s (workspace_id, integration_id, webhook_secret)
	VALUES (set_webhook_secret.workspace_id, set_webhook_secret.integration_id, secret)
	ON CONFLICT ON CONSTRAINT integration_secrets_pkey DO UPDATE SET webhook_secret = EXCLUDED.webhook_secret;
END
$$;

/* the shared body of record_events and record_webhook */
CREATE FUNCTION broadcast._record(
	p_workspace_id text, p_integration_id text, payload jsonb, raw_body text, headers jsonb,
	OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer,
	OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	prov text;
	key text;
	evs broadcast.delivery_event[];
	msg jsonb;
	r record;
BEGIN
	PERFORM broadcast._authorize_webhook(p_workspace_id);
	PERFORM broadcast._check_id('integration', p_integration_id);
	SELECT i.provider, s.webhook_secret INTO prov, key
	  FROM broadcast.integrations i
	  LEFT JOIN broadcast.integration_secrets s
			 ON s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id
	 WHERE i.workspace_id = p_workspace_id AND i.integration_id = p_integration_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(p_integration_id), quote_literal(p_workspace_id));
	END IF;
	IF payload IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'payload must not be NULL';
	END IF;
	IF headers IS NOT NULL AND jsonb_typeof(headers) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'headers must be a JSON object of HTTP header names and values';
	END IF;
	IF prov IN ('mailgun', 'resend', 'ses') AND key IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('integration %s has no webhook signing key', quote_literal(p_integration_id)),
			DETAIL = format('%s signs its webhooks; unsigned payloads are refused.', prov),
			HINT = 'Store it with broadcast.set_webhook_secret().';
	END IF;

	CASE prov
	WHEN 'sendgrid' THEN
		IF jsonb_typeof(payload) <> 'array' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SendGrid event payload must be a JSON array of events';
		END IF;
		evs := ARRAY(SELECT e FROM broadcast._events_sendgrid(payload) e);
	WHEN 'mailgun' THEN
		IF jsonb_typeof(payload) <> 'object' OR jsonb_typeof(payload->'event-data') IS DISTINCT FROM 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'Mailgun webhook payload must be an object with "signature" and "event-data"';
		END IF;
		PERFORM broadcast._verify_mailgun(payload, key);
		evs := ARRAY(SELECT e FROM broadcast._events_mailgun(payload) e);
	WHEN 'postmark' THEN
		IF jsonb_typeof(payload) NOT IN ('object', 'array') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'Postmark webhook payload must be an object (or an array of them)';
		END IF;
		evs := ARRAY(SELECT e FROM broadcast._events_postmark(payload) e);
	WHEN 'ses' THEN
		IF jsonb_typeof(payload) <> 'object'
		   OR coalesce(payload->>'Type', '') NOT IN ('Notification', 'SubscriptionConfirmation',
													 'UnsubscribeConfirmation') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SES events must arrive as an Amazon SNS message',
				HINT = 'Subscribe the webhook to the SNS topic of the configuration set''s event destination, without raw message delivery.';
		END IF;
		PERFORM broadcast._verify_sns(payload, key);
		IF payload->>'Type' <> 'Notification' THEN
			/* the web front confirms the subscription by fetching this URL */
			received := 0; applied := 0; changed := 0; pending := 0; unknown := 0; ignored := 0;
			suppressed := 0;
			confirm_url := CASE WHEN payload->>'Type' = 'SubscriptionConfirmation' THEN payload->>'SubscribeURL' END;
			RETURN;
		END IF;
		BEGIN
			msg := (payload->>'Message')::jsonb;
		EXCEPTION WHEN invalid_text_representation THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'the SNS notification''s Message is not an SES event',
				DETAIL = format('The Message was %s.', left(payload->>'Message', 200));
		END;
		evs := ARRAY(SELECT e FROM broadcast._events_ses(msg) e);
	WHEN 'sparkpost' THEN
		IF jsonb_typeof(payload) <> 'array' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SparkPost webhook payload must be a JSON array of {"msys": ...} objects';
		END IF;
		evs := ARRAY(SELECT e FROM broadcast._events_sparkpost(payload) e);
	WHEN 'mailjet' THEN
		IF jsonb_typeof(payload) NOT IN ('object', 'array') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'Mailjet event payload must be an object (or an array of them)';
		END IF;
		evs := ARRAY(SELECT e FROM broadcast._events_mailjet(payload) e);
	WHEN 'resend' THEN
		IF raw_body IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'Resend signatures cover the raw request body',
				HINT = 'Call broadcast.record_webhook() with the body exactly as received and the svix-* headers.';
		END IF;
		PERFORM broadcast._verify_svix(raw_body, headers, key);
		IF jsonb_typeof(payload) NOT IN ('object', 'array') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'Resend webhook payload must be an object';
		END IF;
		evs := ARRAY(SELECT e FROM broadcast._events_resend(payload) e);
	ELSE
		evs := ARRAY(SELECT e FROM broadcast._events_generic(payload) e);
	END CASE;

	r := broadcast._apply_events(p_workspace_id, p_integration_id, evs);
	received := r.received; applied := r.applied; changed := r.changed; pending := r.pending;
	unknown := r.unknown; ignored := r.ignored; suppressed := r.suppressed;

	/*
	 * A sender batch committing while this payload was parked cannot have
	 * seen it: retry what this workspace parked in the last two minutes.
	 */
	IF EXISTS (SELECT 1 FROM broadcast.pending_events p WHERE p.workspace_id = p_workspace_id) THEN
		PERFORM broadcast._apply_pending(p_workspace_id, now() - interval '2 minutes');
	END IF;
END
$$;

CREATE FUNCTION broadcast.record_events(
	workspace_id text,
	integration_id text,
	payload jsonb,
	headers jsonb DEFAULT NULL,
	OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer,
	OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text)
RETURNS record
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM broadcast._record(workspace_id, integration_id, payload, NULL, headers)
$$;
COMMENT ON FUNCTION broadcast.record_events(text, text, jsonb, jsonb) IS
	'Applies a provider''s webhook payload (or the generic form) to message_history and suppressions';

/* the web front's entry point: the body exactly as received (Resend signs its bytes) */
CREATE FUNCTION broadcast.record_webhook(
	workspace_id text,
	integration_id text,
	body text,
	headers jsonb DEFAULT NULL,
	OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer,
	OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	payload jsonb;
	r record;
BEGIN
	IF body IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'body must not be NULL';
	END IF;
	BEGIN
		payload := body::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'webhook body is not valid JSON',
			DETAIL = format('The body starts with %s.', broadcast._show(left(body, 60)));
	END;
	r := broadcast._record(workspace_id, integration_id, payload, body, headers);
	received := r.received; applied := r.applied; changed := r.changed; pending := r.pending;
	unknown := r.unknown; ignored := r.ignored; suppressed := r.suppressed; confirm_url := r.confirm_url;
END
$$;

/*
 * The one-click unsubscribe (RFC 8058) behind a web front: verifies the
 * token from the List-Unsubscribe URL in constant time against its
 * workspace's secret, unsubscribes the address from the token's list (or,
 * for a token without a list, from every list and with a suppression),
 * records unsubscribed_at on the message and drops queued mail.  A second
 * call changes nothing and returns unsubscribed = false.
 */
CREATE FUNCTION broadcast.unsubscribe(
	token text,
	OUT workspace_id text, OUT email text, OUT list_id text, OUT unsubscribed boolean)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	secret bytea;
	mid uuid;
	n bigint;
BEGIN
	IF token IS NULL OR token = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token is empty.';
	END IF;
	/* malformed tokens raise here; the fields are not trusted before the MAC check */
	t := broadcast._unsub_token_parse(token);
	SELECT s.unsubscribe_secret INTO secret FROM broadcast.workspace_secrets s
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._unsub_token_verify(token, secret) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid unsubscribe token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;

	workspace_id := t.workspace_id;
	email := t.email;
	list_id := nullif(t.list_id, '');
	mid := broadcast._uuid_or_null(t.message_id);

	/*
	 * The workspace's audience lock, exclusive: the queue rows dropped below
	 * include those of any expansion chunk in flight, and later chunks see
	 * the unsubscribe.  It also serialises concurrent clicks on the address.
	 */
	PERFORM broadcast._lock_audience(workspace_id);
	IF list_id IS NOT NULL THEN
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe.workspace_id AND m.list_id = unsubscribe.list_id
		   AND m.email = unsubscribe.email AND m.status IN ('active', 'pending');
		GET DIAGNOSTICS n = ROW_COUNT;
		DELETE FROM broadcast.email_queue q
		 USING broadcast.broadcasts b
		 WHERE b.workspace_id = unsubscribe.workspace_id
		   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
		   AND q.workspace_id = unsubscribe.workspace_id AND q.broadcast_id = b.broadcast_id
		   AND q.email = unsubscribe.email AND q.list_id = unsubscribe.list_id
		   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now());
	ELSE
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe.workspace_id AND m.email = unsubscribe.email
		   AND m.status IN ('active', 'pending');
		GET DIAGNOSTICS n = ROW_COUNT;
		INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
		VALUES (unsubscribe.workspace_id, unsubscribe.email, 'unsubscribe', 'one-click unsubscribe')
		ON CONFLICT DO NOTHING;
		n := n + CASE WHEN FOUND THEN 1 ELSE 0 END;
		DELETE FROM broadcast.email_queue q
		 USING broadcast.broadcasts b
		 WHERE b.workspace_id = unsubscribe.workspace_id
		   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
		   AND q.workspace_id = unsubscribe.workspace_id AND q.broadcast_id = b.broadcast_id
		   AND q.email = unsubscribe.email
		   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now());
	END IF;
	IF mid IS NOT NULL THEN
		UPDATE broadcast.message_history h SET unsubscribed_at = now()
		 WHERE h.workspace_id = unsubscribe.workspace_id AND h.message_id = mid
		   AND h.unsubscribed_at IS NULL;
	END IF;
	unsubscribed := n > 0;
END
$$;

REVOKE ALL ON FUNCTION broadcast.record_events(text, text, jsonb, jsonb),
	broadcast.record_webhook(text, text, text, jsonb), broadcast.unsubscribe(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.record_events(text, text, jsonb, jsonb),
	broadcast.record_webhook(text, text, text, jsonb), broadcast.unsubscribe(text)
	TO broadcast_webhook, broadcast_user, broadcast_admin;
REVOKE ALL ON FUNCTION broadcast._apply_events(text, text, broadcast.delivery_event[]),
	broadcast._apply_pending(text, timestamptz),
	broadcast._record(text, text, jsonb, text, jsonb) FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Stats: rates over delivered, or over sent when the provider reports no
 * deliveries; per broadcast (broadcast_stats) and per variation (view)
 * ------------------------------------------------------------------------ */

DROP FUNCTION broadcast.broadcast_stats(text, text);
CREATE FUNCTION broadcast.broadcast_stats(workspace_id text, broadcast_id text)
RETURNS TABLE (
	template_id text,
	sent bigint,
	failed bigint,
	delivered bigint,
	opened bigint,
	clicked bigint,
	bounced bigint,
	complained bigint,
	unsubscribed bigint,
	delivery_rate numeric,
	open_rate numeric,
	click_rate numeric,
	bounce_rate numeric,
	complaint_rate numeric,
	unsubscribe_rate numeric)
LANGUAGE sql STABLE
AS $$
	SELECT s.template_id, s.sent, s.failed, s.delivered, s.opened, s.clicked, s.bounced,
		   s.complained, s.unsubscribed,
		   round(s.delivered::numeric / nullif(s.sent, 0), 4),
		   round(s.opened::numeric / nullif(s.base, 0), 4),
		   round(s.clicked::numeric / nullif(s.base, 0), 4),
		   round(s.bounced::numeric / nullif(s.sent, 0), 4),
		   round(s.complained::numeric / nullif(s.base, 0), 4),
		   round(s.unsubscribed::numeric / nullif(s.base, 0), 4)
	  FROM (SELECT g.*,
				   /* delivered when the broadcast's provider reports deliveries at all */
				   CASE WHEN max(g.delivered) OVER () > 0 THEN g.reached ELSE g.sent END AS base
			  FROM (SELECT h.template_id,
						   count(*) FILTER (WHERE h.status = 'sent') AS sent,
						   count(*) FILTER (WHERE h.status = 'failed') AS failed,
						   count(h.delivered_at) AS delivered,
						   /* an open or a click proves a delivery the provider may not have reported */
						   count(*) FILTER (WHERE h.delivered_at IS NOT NULL OR h.opened_at IS NOT NULL
											 OR h.clicked_at IS NOT NULL) AS reached,
						   count(h.opened_at) AS opened,
						   count(h.clicked_at) AS clicked,
						   count(h.bounced_at) AS bounced,
						   count(h.complained_at) AS complained,
						   count(h.unsubscribed_at) AS unsubscribed
					  FROM broadcast.message_history h
					 WHERE h.workspace_id = $1 AND h.broadcast_id = $2
					 GROUP BY GROUPING SETS ((h.template_id), ())) g) s
	 ORDER BY s.template_id NULLS FIRST
$$;
COMMENT ON FUNCTION broadcast.broadcast_stats(text, text) IS
	'Totals (template_id NULL) and per-variation counts and rates of a broadcast''s messages';

/*
 * One row per pinned variation of every broadcast: filter on workspace_id
 * and broadcast_id and each variation's counts come from one probe of
 * message_history_broadcast_template_idx.
 */
CREATE VIEW broadcast.variation_stats WITH (security_invoker = true) AS
SELECT x.workspace_id, x.broadcast_id, x.variation, x.template_id, x.version, x.winner,
	   x.sent, x.failed, x.delivered, x.opened, x.clicked, x.bounced, x.complained, x.unsubscribed,
	   round(x.delivered::numeric / nullif(x.sent, 0), 4) AS delivery_rate,
	   round(x.opened::numeric / nullif(x.base, 0), 4) AS open_rate,
	   round(x.clicked::numeric / nullif(x.base, 0), 4) AS click_rate,
	   round(x.bounced::numeric / nullif(x.sent, 0), 4) AS bounce_rate,
	   round(x.complained::numeric / nullif(x.base, 0), 4) AS complaint_rate,
	   round(x.unsubscribed::numeric / nullif(x.base, 0), 4) AS unsubscribe_rate
  FROM (SELECT v.workspace_id, v.broadcast_id, v.variation, v.template_id, v.version,
			   coalesce(b.winner_template_id = v.template_id, false) AS winner, s.*,
			   /* delivered when the broadcast's provider reports deliveries at all */
			   CASE WHEN max(s.delivered) OVER (PARTITION BY v.workspace_id, v.broadcast_id) > 0
					THEN s.reached ELSE s.sent END AS base
		  FROM broadcast.broadcast_variations v
		  JOIN broadcast.broadcasts b ON b.workspace_id = v.workspace_id AND b.broadcast_id = v.broadcast_id
		 CROSS JOIN LATERAL (
			SELECT count(*) FILTER (WHERE h.status = 'sent') AS sent,
				   count(*) FILTER (WHERE h.status = 'failed') AS failed,
				   count(h.delivered_at) AS delivered,
				   count(*) FILTER (WHERE h.delivered_at IS NOT NULL OR h.opened_at IS NOT NULL
									 OR h.clicked_at IS NOT NULL) AS reached,
				   count(h.opened_at) AS opened,
				   count(h.clicked_at) AS clicked,
				   count(h.bounced_at) AS bounced,
				   count(h.complained_at) AS complained,
				   count(h.unsubscribed_at) AS unsubscribed
			  FROM broadcast.message_history h
			 WHERE h.workspace_id = v.workspace_id AND h.broadcast_id = v.broadcast_id
			   AND h.template_id = v.template_id) s) x;
GRANT SELECT ON broadcast.variation_stats TO broadcast_user, broadcast_admin;

/*
 * A suppression added by any path, including a workspace role's direct
 * INSERT into broadcast.suppressions, drops the address's queued rows at
 * once (rows a sender holds in flight finish on their own), under the
 * audience lock so that a chunk in flight cannot queue it afterwards.
 */
CREATE FUNCTION broadcast._suppressions_drop_queued()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ws text;
BEGIN
	FOR ws IN SELECT DISTINCT a.workspace_id FROM added a ORDER BY 1 LOOP
		PERFORM broadcast._lock_audience(ws);
	END LOOP;
	DELETE FROM broadcast.email_queue q
	 USING added a
	 WHERE q.workspace_id = a.workspace_id AND q.email = a.email
	   AND q.status IN ('pending', 'sending')
	   AND (q.lease_until IS NULL OR q.lease_until <= now())
	   AND NOT (q.status = 'sending' AND q.next_attempt_at > now());
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION broadcast._suppressions_drop_queued() FROM PUBLIC;

CREATE TRIGGER suppressions_drop_queued AFTER INSERT ON broadcast.suppressions
	REFERENCING NEW TABLE AS added
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._suppressions_drop_queued();

/* ------------------------------------------------------------------------
 * Integrations: rotating a key, changing config or the rate limit
 * ------------------------------------------------------------------------ */

/*
 * Changes what is given and keeps the rest: config replaces the whole
 * config, secret the API key or password, rate_per_second this workspace's
 * limit (remove_rate_limit drops it).  The result is checked like a new
 * integration's.  Senders reload an integration at most 10 s after the
 * change (docs/sql-api.md); rates apply at once.
 */
CREATE FUNCTION broadcast.update_integration(
	workspace_id text,
	integration_id text,
	config jsonb DEFAULT NULL,
	secret text DEFAULT NULL,
	rate_per_second numeric DEFAULT NULL,
	remove_rate_limit boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i broadcast.integrations;
	old_secret text;
BEGIN
	PERFORM broadcast._authorize_caller(update_integration.workspace_id);
	PERFORM broadcast._check_id('integration', update_integration.integration_id);
	IF update_integration.config IS NULL AND update_integration.secret IS NULL
	   AND update_integration.rate_per_second IS NULL AND NOT coalesce(remove_rate_limit, false) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'nothing to update',
			HINT = 'Pass config, secret, rate_per_second or remove_rate_limit => true.';
	END IF;
	IF update_integration.rate_per_second IS NOT NULL AND remove_rate_limit THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second and remove_rate_limit cannot be used together';
	END IF;
	IF update_integration.rate_per_second IS NOT NULL AND update_integration.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive',
			HINT = 'Pass remove_rate_limit => true for no workspace limit.';
	END IF;

	SELECT * INTO i FROM broadcast.integrations x
	 WHERE x.workspace_id = update_integration.workspace_id
	   AND x.integration_id = update_integration.integration_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(update_integration.integration_id),
							 quote_literal(update_integration.workspace_id));
	END IF;
	IF i.shared_id IS NOT NULL AND (update_integration.config IS NOT NULL OR update_integration.secret IS NOT NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('integration %s uses the shared integration %s: its config and secret belong to the platform',
							 quote_literal(i.integration_id), quote_literal(i.shared_id)),
			HINT = 'Only rate_per_second can change here; an administrator changes the shared integration.';
	END IF;
	SELECT s.secret INTO old_secret FROM broadcast.integration_secrets s
	 WHERE s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id;
	IF i.shared_id IS NULL THEN
		PERFORM broadcast._check_integration_config(i.provider, coalesce(update_integration.config, i.config),
													 coalesce(update_integration.secret, old_secret));
	END IF;

	UPDATE broadcast.integrations x
	   SET config = coalesce(update_integration.config, x.config),
		   rate_per_second = CASE WHEN remove_rate_limit THEN NULL
								  ELSE coalesce(update_integration.rate_per_second, x.rate_per_second) END,
		   updated_at = now()
	 WHERE x.workspace_id = i.workspace_id AND x.integration_id = i.integration_id;
	IF update_integration.secret IS NOT NULL THEN
		UPDATE broadcast.integration_secrets s SET secret = update_integration.secret
		 WHERE s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id;
	END IF;
	RETURN i.integration_id;
END
$$;

/* ------------------------------------------------------------------------
 * Erasure: forgetting a contact (GDPR article 17)
 * ------------------------------------------------------------------------ */

/*
 * Removes a person from the workspace: the contact and its list
 * memberships, queued mail (rows in flight finish), soft-bounce and
 * pending-event records; history rows keep their counts and events but
 * lose the address.  By default the address stays in suppressions so that
 * no later import mails it again (the usual legal basis for keeping it);
 * keep_suppression => false removes that too.  Returns the history rows
 * made anonymous.
 */
CREATE FUNCTION broadcast.forget_contact(
	workspace_id text,
	email text,
	keep_suppression boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	addr text := lower(forget_contact.email);
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(forget_contact.workspace_id);
	PERFORM broadcast._check_email(forget_contact.email);
	IF keep_suppression IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'keep_suppression must not be NULL';
	END IF;
	/* like a suppression: chunks in flight finish first, later ones see the change */
	PERFORM broadcast._lock_audience(forget_contact.workspace_id);
	IF keep_suppression THEN
		INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
		VALUES (forget_contact.workspace_id, addr, 'manual', 'forgotten')
		ON CONFLICT DO NOTHING;
	ELSE
		DELETE FROM broadcast.suppressions s
		 WHERE s.workspace_id = forget_contact.workspace_id AND s.email = addr;
	END IF;
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = forget_contact.workspace_id AND q.email = addr
	   AND (q.lease_until IS NULL OR q.lease_until <= now())
	   AND NOT (q.status = 'sending' AND q.next_attempt_at > now());
	/* list memberships go with the contact (ON DELETE CASCADE) */
	DELETE FROM broadcast.contacts c
	 WHERE c.workspace_id = forget_contact.workspace_id AND c.email = addr;
	DELETE FROM broadcast.soft_bounces b
	 WHERE b.workspace_id = forget_contact.workspace_id AND b.email = addr;
	DELETE FROM broadcast.pending_events p
	 WHERE p.workspace_id = forget_contact.workspace_id AND p.email = addr;
	UPDATE broadcast.message_history h
	   SET email = 'forgotten-' || left(md5(h.message_id::text), 16) || '@invalid', error = NULL
	 WHERE h.workspace_id = forget_contact.workspace_id AND h.email = addr;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

/* ------------------------------------------------------------------------
 * Dropping a list
 * ------------------------------------------------------------------------ */

/*
 * Drops a list and its memberships (the contacts stay).  Refused while a
 * broadcast that has not ended (drafts included) sends to it or excludes
 * it.  History keeps the list's id.  Returns the memberships removed.
 */
CREATE FUNCTION broadcast.drop_list(workspace_id text, list_id text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text[];
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(drop_list.workspace_id);
	PERFORM broadcast._check_id('list', drop_list.list_id);
	PERFORM 1 FROM broadcast.lists l
	 WHERE l.workspace_id = drop_list.workspace_id AND l.list_id = drop_list.list_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('list %s does not exist in workspace %s',
							 quote_literal(drop_list.list_id), quote_literal(drop_list.workspace_id));
	END IF;
	SELECT array_agg(b.broadcast_id ORDER BY b.broadcast_id) INTO users
	  FROM broadcast.broadcasts b
	 WHERE b.workspace_id = drop_list.workspace_id
	   AND b.status NOT IN ('completed', 'cancelled', 'failed')
	   AND (drop_list.list_id = ANY (b.lists) OR drop_list.list_id = ANY (b.exclude_lists));
	IF users IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_in_use',
			MESSAGE = format('list %s is used by %s broadcast(s) that have not ended',
							 quote_literal(drop_list.list_id), cardinality(users)),
			DETAIL = format('Broadcasts: %s.', array_to_string(users, ', ')),
			HINT = 'Cancel them, wait until they complete, or change a draft''s lists with update_broadcast().';
	END IF;
	DELETE FROM broadcast.list_members m
	 WHERE m.workspace_id = drop_list.workspace_id AND m.list_id = drop_list.list_id;
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM broadcast.lists l
	 WHERE l.workspace_id = drop_list.workspace_id AND l.list_id = drop_list.list_id;
	RETURN n;
END
$$;
