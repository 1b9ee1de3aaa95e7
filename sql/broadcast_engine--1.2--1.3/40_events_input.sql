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

/*
 * An integer parameter of the engine as SQL reads it, clamped to its
 * bounds.  Values with a unit ("5min", "1d") are read as seconds.  When the
 * library is not loaded in this backend, anyone could SET a placeholder of
 * the same name, so the bounds are applied here too, and anything
 * unreadable gives the default.
 */
CREATE FUNCTION broadcast._setting_int(name text, dflt integer, lo integer, hi integer)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v text := nullif(btrim(current_setting(name, true)), '');
	n numeric;
BEGIN
	IF v IS NULL THEN
		RETURN dflt;
	ELSIF v ~ '^-?[0-9]{1,10}$' THEN
		n := v::numeric;
	ELSIF v ~ '^[0-9]{1,10} ?(ms|s|min|h|d)$' THEN
		n := extract(epoch FROM v::interval);
	ELSE
		RETURN dflt;
	END IF;
	RETURN least(greatest(n, lo), hi)::integer;
END
$$;

/* ------------------------------------------------------------------------
 * Amazon SNS: the integration's topic, and the message's age
 * ------------------------------------------------------------------------ */

/*
 * Any AWS account can create a topic and have SNS sign messages for it, so a
 * valid signature proves only that the message came through SNS.  The
 * TopicArn (signed) must be the integration's own, and the Timestamp
 * (signed, kept across SNS's retries) must be recent: a captured message
 * cannot be replayed later.
 */
CREATE FUNCTION broadcast._check_sns_origin(payload jsonb, topic text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	max_age integer := broadcast._setting_int('broadcast_engine.sns_max_age', 3600, 0, 14 * 86400);
	ahead integer := broadcast._setting_int('broadcast_engine.webhook_tolerance', 300, 0, 7 * 86400);
	ts timestamptz;
BEGIN
	IF payload->>'TopicArn' IS DISTINCT FROM topic THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_authorization_specification',
			MESSAGE = 'SNS message is not from the integration''s topic',
			DETAIL = format('The message came from topic %s; this integration accepts only %s.',
							broadcast._show(payload->>'TopicArn'), broadcast._show(topic)),
			HINT = 'Subscribe the webhook to the topic named in the integration''s topic_arn, or change topic_arn with broadcast.update_integration().';
	END IF;
	IF coalesce(payload->>'Timestamp', '') !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$' THEN
		PERFORM broadcast._signature_error('ses', format('The SNS Timestamp %s is not an ISO 8601 UTC time.',
														  broadcast._show(payload->>'Timestamp')));
	END IF;
	BEGIN
		ts := (payload->>'Timestamp')::timestamptz;
	EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
		PERFORM broadcast._signature_error('ses', format('The SNS Timestamp %s is not a valid time.',
														  broadcast._show(payload->>'Timestamp')));
	END;
	IF max_age > 0 AND ts < now() - make_interval(secs => max_age) THEN
		PERFORM broadcast._signature_error('ses',
			format('The message was published at %s, more than %s seconds ago (broadcast_engine.sns_max_age).',
				   payload->>'Timestamp', max_age));
	END IF;
	IF ahead > 0 AND ts > now() + make_interval(secs => ahead) THEN
		PERFORM broadcast._signature_error('ses',
			format('The message''s Timestamp %s is more than %s seconds ahead of the server''s clock (broadcast_engine.webhook_tolerance).',
				   payload->>'Timestamp', ahead));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION broadcast._check_sns_origin(jsonb, text) FROM PUBLIC;

/* the topic: an optional SES config key, required before SNS messages are accepted */
CREATE OR REPLACE FUNCTION broadcast._check_integration_config(provider text, config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	allowed text[];
	required text[];
	k text;
BEGIN
	IF provider IS NULL OR provider NOT IN ('smtp', 'sendgrid', 'mailgun', 'postmark', 'ses',
											 'sparkpost', 'mailjet', 'resend') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown provider %s', coalesce(quote_literal(provider), 'NULL')),
			HINT = 'Providers: smtp, sendgrid, mailgun, postmark, ses, sparkpost, mailjet, resend.';
	END IF;
	IF config IS NULL OR jsonb_typeof(config) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration config must be a JSON object';
	END IF;

	CASE provider
		WHEN 'smtp' THEN
			required := ARRAY['host'];
			allowed := ARRAY['host', 'port', 'tls', 'username', 'ehlo_name', 'ca_file'];
		WHEN 'sendgrid' THEN
			required := '{}';
			allowed := ARRAY['endpoint'];
		WHEN 'mailgun' THEN
			required := ARRAY['domain'];
			allowed := ARRAY['endpoint', 'domain', 'region'];
		WHEN 'postmark' THEN
			required := '{}';
			allowed := ARRAY['endpoint', 'message_stream'];
		WHEN 'ses' THEN
			required := ARRAY['region', 'access_key_id'];
			allowed := ARRAY['endpoint', 'region', 'access_key_id', 'configuration_set', 'topic_arn'];
		WHEN 'sparkpost' THEN
			required := '{}';
			allowed := ARRAY['endpoint', 'region'];
		WHEN 'mailjet' THEN
			required := ARRAY['api_key'];
			allowed := ARRAY['endpoint', 'api_key'];
		WHEN 'resend' THEN
			required := '{}';
			allowed := ARRAY['endpoint'];
	END CASE;

	/* a CA bundle for providers behind a private certificate authority */
	allowed := allowed || 'ca_file'::text;
	FOREACH k IN ARRAY required LOOP
		IF NOT config ? k OR jsonb_typeof(config->k) <> 'string' OR config->>k = '' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('%s integration config is missing required key %s', provider, quote_literal(k)),
				HINT = format('Required keys for %s: %s.', provider, array_to_string(required, ', '));
		END IF;
	END LOOP;
	SELECT key INTO k FROM jsonb_object_keys(config) key WHERE key <> ALL (allowed) LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown key %s in %s integration config', quote_literal(k), provider),
			HINT = format('Keys for %s: %s.', provider, array_to_string(allowed, ', '));
	END IF;

	IF config ? 'endpoint' AND coalesce(config->>'endpoint', '') !~ '^https?://[A-Za-z0-9.\[\]:-]+(/[^\s]*)?$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration endpoint must be an http or https URL',
			DETAIL = format('The value was %s.', config->'endpoint');
	END IF;
	IF config ? 'region' AND provider IN ('mailgun', 'sparkpost') AND config->>'region' NOT IN ('us', 'eu') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s region must be "us" or "eu"', provider);
	END IF;
	IF provider = 'ses' AND config->>'region' !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid AWS region %s', quote_literal(config->>'region')),
			HINT = 'Use a region code such as "eu-west-1".';
	END IF;
	/* the SNS topic SES publishes this integration's events to: webhooks from others are refused */
	IF provider = 'ses' AND config ? 'topic_arn'
	   AND (jsonb_typeof(config->'topic_arn') <> 'string'
			OR config->>'topic_arn' !~ '^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,255}(\.fifo)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid SNS topic ARN %s', config->'topic_arn'),
			HINT = 'Use the ARN of the topic the configuration set''s event destination publishes to, such as "arn:aws:sns:eu-west-1:123456789012:ses-events".';
	END IF;
	IF provider = 'smtp' THEN
		IF config->>'host' !~ '^[A-Za-z0-9.:\[\]-]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid SMTP host %s', quote_literal(config->>'host'));
		END IF;
		IF config ? 'port' AND (jsonb_typeof(config->'port') <> 'number'
								OR (config->>'port')::numeric NOT BETWEEN 1 AND 65535
								OR (config->>'port')::numeric <> trunc((config->>'port')::numeric)) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SMTP port must be an integer between 1 and 65535';
		END IF;
		IF config ? 'tls' AND coalesce(config->>'tls', '') NOT IN ('starttls', 'implicit', 'none') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid SMTP tls mode %s', config->'tls'),
				HINT = 'Use "starttls" (the default), "implicit" or "none".';
		END IF;
		IF config ? 'username' AND secret IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SMTP username given without a password',
				HINT = 'Pass the password as the secret argument.';
		END IF;
		IF config ? 'ehlo_name' AND config->>'ehlo_name' !~ '^[A-Za-z0-9.-]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid EHLO name %s', config->'ehlo_name');
		END IF;
	ELSIF secret IS NULL OR secret = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s integration requires a secret', provider),
			HINT = CASE provider
				WHEN 'ses' THEN 'Pass the AWS secret access key (or a JSON object {"secret_access_key": ..., "session_token": ...}).'
				WHEN 'mailjet' THEN 'Pass the Mailjet API secret key; the public key goes in config.api_key.'
				ELSE 'Pass the provider''s API key as the secret argument.' END;
	END IF;
	IF secret ~ '[\x00-\x1f\x7f]' AND provider <> 'ses' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration secret must not contain control characters';
	END IF;
END
$$;

/* SES messages are checked against the integration's topic and for age */
CREATE OR REPLACE FUNCTION broadcast._record(
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
	topic text;
	evs broadcast.delivery_event[];
	msg jsonb;
	r record;
BEGIN
	PERFORM broadcast._authorize_webhook(p_workspace_id);
	PERFORM broadcast._check_id('integration', p_integration_id);
	SELECT i.provider, s.webhook_secret, coalesce(i.config->>'topic_arn', sh.config->>'topic_arn')
	  INTO prov, key, topic
	  FROM broadcast.integrations i
	  LEFT JOIN broadcast.integration_secrets s
			 ON s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id
	  LEFT JOIN broadcast.shared_integrations sh ON sh.shared_id = i.shared_id
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
	IF prov = 'ses' AND topic IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('integration %s has no SNS topic', quote_literal(p_integration_id)),
			DETAIL = 'SNS messages are accepted only from the topic the integration names; any AWS account can sign messages for its own topics.',
			HINT = 'Set it with broadcast.update_integration(..., config => ...) and the key "topic_arn".';
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
		PERFORM broadcast._check_sns_origin(payload, topic);
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

CREATE OR REPLACE FUNCTION broadcast._apply_events(
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
	waiting broadcast.delivery_event[];
	cap integer;
	parked integer;
	room integer;
	dropped integer := 0;
BEGIN
	received := coalesce(cardinality(evs), 0);
	changed := 0;
	suppressed := 0;

	/* 1. match */
	WITH e AS (
		SELECT x.* FROM unnest(evs) x WHERE x.event <> 'ignored'
	), r AS (
		/*
		 * Only messages sent through this integration: an event arriving
		 * through another one (an unsigned SMTP integration, say) is unknown
		 * here, and is not parked either.
		 */
		SELECT e.*, coalesce(h1.message_id, h2.message_id) AS hid,
			   coalesce(h1.email, h2.email) AS hemail, coalesce(h1.list_id, h2.list_id) AS hlist,
			   h0.message_id IS NOT NULL AS known
		  FROM e
		  LEFT JOIN broadcast.message_history h0
				 ON h0.workspace_id = p_workspace_id AND h0.message_id = e.message_id
		  LEFT JOIN broadcast.message_history h1
				 ON h1.workspace_id = p_workspace_id AND h1.message_id = e.message_id
				AND h1.integration_id = p_integration_id
		  LEFT JOIN LATERAL (
				SELECT h.message_id, h.email, h.list_id FROM broadcast.message_history h
				 WHERE e.message_id IS NULL AND e.provider_message_id IS NOT NULL
				   AND h.workspace_id = p_workspace_id
				   AND h.provider_message_id IN (e.provider_message_id, '<' || e.provider_message_id || '>')
				   AND h.integration_id = p_integration_id
				   AND (e.email IS NULL OR h.email = e.email)
				 LIMIT 1) h2 ON true
	), w AS (
		/*
		 * Unmatched: ours to wait for when it carries our id, or when it
		 * carries the provider's id and the address has a queue row in a
		 * sender's hands (sent, history row not committed yet)
		 */
		SELECT r.*,
			   r.hid IS NULL AND NOT r.known AND (r.message_id IS NOT NULL OR (
				   r.provider_message_id IS NOT NULL AND r.email IS NOT NULL
				   AND EXISTS (SELECT 1 FROM broadcast.broadcasts b
								 JOIN broadcast.email_queue q
								   ON q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
								WHERE b.workspace_id = p_workspace_id
								  AND b.status IN ('processing', 'testing', 'test_completed', 'winner_selected', 'paused')
								  AND q.email = r.email AND q.integration_id = p_integration_id
								  AND (q.lease_until IS NOT NULL OR q.status = 'sending')))) AS wait
		  FROM r
	)
	SELECT coalesce(array_agg(ROW(w.hid, w.hemail, w.hlist, w.event, w.occurred_at, w.bounce_type,
								  w.detail)::broadcast._matched_event) FILTER (WHERE w.hid IS NOT NULL),
					'{}'),
		   coalesce(array_agg(ROW(w.message_id, CASE WHEN w.message_id IS NULL THEN w.provider_message_id END,
								  CASE WHEN w.message_id IS NULL THEN w.email END, w.event, w.occurred_at,
								  w.bounce_type, w.detail)::broadcast.delivery_event) FILTER (WHERE w.wait),
					'{}'),
		   count(*) FILTER (WHERE w.hid IS NULL AND NOT w.wait)
	  INTO m, waiting, unknown
	  FROM w;
	pending := cardinality(waiting);

	/*
	 * Park, within the workspace's bound (broadcast_engine.pending_events_limit):
	 * expired rows go first, events already parked (replays) take no room,
	 * and what does not fit is dropped, counted and reported.  The
	 * workspace's audience lock (35_audience_lock.sql: a row lock no other
	 * role can take) makes concurrent calls of one workspace count in turn.
	 */
	IF pending > 0 THEN
		PERFORM broadcast._lock_audience(p_workspace_id);
		DELETE FROM broadcast.pending_events p
		 WHERE p.workspace_id = p_workspace_id
		   AND p.received_at < now() - make_interval(secs => broadcast._setting_int(
				'broadcast_engine.pending_events_max_age', 86400, 60, 30 * 86400));
		cap := broadcast._setting_int('broadcast_engine.pending_events_limit', 10000, 0, 10000000);
		SELECT count(*) INTO parked
		  FROM (SELECT 1 FROM broadcast.pending_events p WHERE p.workspace_id = p_workspace_id LIMIT cap) x;
		room := greatest(cap - parked, 0);
		WITH fresh AS (
			SELECT x.* FROM unnest(waiting) WITH ORDINALITY
					 AS x(message_id, provider_message_id, email, event, occurred_at, bounce_type, detail, ord)
			 /* the unique key's columns as one hashable value: an anti-join, not a probe per event */
			 WHERE concat(coalesce(x.message_id::text, '-'), ' ', coalesce(x.provider_message_id, '-'), ' ',
						  coalesce(x.email, '-'), ' ', x.event, ' ', x.occurred_at)
				   NOT IN (SELECT concat(coalesce(p.message_id::text, '-'), ' ', coalesce(p.provider_message_id, '-'),
										 ' ', coalesce(p.email, '-'), ' ', p.event, ' ', p.occurred_at)
							 FROM broadcast.pending_events p WHERE p.workspace_id = p_workspace_id)
		), kept AS (
			SELECT f.* FROM fresh f ORDER BY f.ord LIMIT room
		), ins AS (
			INSERT INTO broadcast.pending_events AS p
				(workspace_id, message_id, provider_message_id, email, event, occurred_at, bounce_type,
				 detail, integration_id)
			SELECT p_workspace_id, k.message_id, k.provider_message_id, k.email, k.event, k.occurred_at,
				   k.bounce_type, k.detail, p_integration_id
			  FROM kept k
			ON CONFLICT DO NOTHING
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM fresh) - (SELECT count(*) FROM kept) INTO dropped;
		IF dropped > 0 THEN
			INSERT INTO broadcast.pending_events_dropped AS d (workspace_id, dropped, last_dropped_at)
			VALUES (p_workspace_id, dropped, now())
			ON CONFLICT (workspace_id) DO UPDATE SET dropped = d.dropped + EXCLUDED.dropped,
				last_dropped_at = EXCLUDED.last_dropped_at;
			RAISE WARNING USING
				MESSAGE = format('%s delivery events for workspace %s were dropped: too many are waiting for their messages',
								 dropped, quote_literal(p_workspace_id)),
				DETAIL = format('At most %s events may wait per workspace (broadcast_engine.pending_events_limit).', cap),
				HINT = 'Events for message ids this server never sent are the usual cause; see broadcast.pending_events_dropped.';
			pending := pending - dropped;
			unknown := unknown + dropped;
		END IF;
	END IF;
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

/* pending events, per workspace and integration: only that integration's messages */
CREATE OR REPLACE FUNCTION broadcast._apply_pending(p_workspace_id text, p_since timestamptz)
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
		SELECT p.workspace_id, p.integration_id
		  FROM broadcast.pending_events p
		 WHERE (p_workspace_id IS NULL OR p.workspace_id = p_workspace_id)
		   AND (p_since IS NULL OR p.received_at >= p_since)
		   AND EXISTS (SELECT 1 FROM broadcast.message_history h
						WHERE h.workspace_id = p.workspace_id AND h.integration_id = p.integration_id
						  AND (h.message_id = p.message_id
							   OR (p.message_id IS NULL AND h.email = p.email
								   AND h.provider_message_id IN (p.provider_message_id,
																 '<' || p.provider_message_id || '>'))))
		 GROUP BY p.workspace_id, p.integration_id
	LOOP
		WITH gone AS (
			DELETE FROM broadcast.pending_events p
			 WHERE p.workspace_id = w.workspace_id AND p.integration_id = w.integration_id
			   AND (p_since IS NULL OR p.received_at >= p_since)
			   AND EXISTS (SELECT 1 FROM broadcast.message_history h
							WHERE h.workspace_id = p.workspace_id AND h.integration_id = p.integration_id
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

/* the history trigger: an event parked for one integration never applies to another's message */
CREATE OR REPLACE FUNCTION broadcast._history_apply_pending()
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
			ON p.workspace_id = n.workspace_id AND p.integration_id = n.integration_id
		   AND (p.message_id = n.message_id
				OR (p.message_id IS NULL AND p.email = n.email
					AND n.provider_message_id IN (p.provider_message_id, '<' || p.provider_message_id || '>')))
		 GROUP BY p.workspace_id, p.integration_id
	LOOP
		locked := false;
		IF w.suppressing THEN
			locked := broadcast._try_lock_audience(w.workspace_id, true);
		END IF;
		WITH gone AS (
			DELETE FROM broadcast.pending_events p
			 USING new_rows n
			 WHERE p.workspace_id = w.workspace_id AND n.workspace_id = w.workspace_id
			   AND n.integration_id = p.integration_id
			   AND (p.message_id = n.message_id
					OR (p.message_id IS NULL AND p.email = n.email
						AND n.provider_message_id IN (p.provider_message_id,
													  '<' || p.provider_message_id || '>')))
			   AND p.integration_id = w.integration_id
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

/*
 * For pg_cron or an operator: applies every pending event whose history
 * row exists, and drops the ones older than max_age (at most ten years, so
 * that now() - max_age is a time).  Parked events also expire on their own
 * (broadcast_engine.pending_events_max_age) when their workspace parks more.
 */
CREATE OR REPLACE FUNCTION broadcast.apply_pending_events(max_age interval DEFAULT '7 days',
														  OUT applied bigint, OUT expired bigint)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('apply pending delivery events');
	IF max_age IS NULL OR max_age < interval '0' OR max_age > interval '3650 days' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'max_age must be an interval between 0 and 3650 days';
	END IF;
	applied := broadcast._apply_pending(NULL, NULL);
	DELETE FROM broadcast.pending_events p WHERE p.received_at < now() - max_age;
	GET DIAGNOSTICS expired = ROW_COUNT;
END
$$;

/* ------------------------------------------------------------------------
 * Workspace settings: checked on every write
 * ------------------------------------------------------------------------ */

/*
 * The settings a send uses, checked the way the message builder will use
 * them (src/mime.c): a List-Unsubscribe header is "<url>, <mailto>", so
 * neither may hold a character that ends or splits it.  create_workspace
 * checks the same keys first; this also covers an administrator's UPDATE.
 * unsubscribe_page holds the HTTP edge's page texts (70_edge.sql).
 */
CREATE FUNCTION broadcast._check_workspace_settings(settings jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	v text;
	n numeric;
	bad_key text;
	page jsonb;
	lim integer;
BEGIN
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace settings must be a JSON object';
	END IF;
	FOR k IN SELECT x FROM jsonb_object_keys(settings) x ORDER BY 1 LOOP
		IF k NOT IN ('sending_domain', 'unsubscribe_base_url', 'unsubscribe_mailto',
					 'default_from_email', 'default_from_name', 'soft_bounce_threshold',
					 'unsubscribe_page') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown workspace setting %s', quote_literal(k)),
				HINT = 'Known settings: sending_domain, unsubscribe_base_url, unsubscribe_mailto, default_from_email, default_from_name, soft_bounce_threshold, unsubscribe_page.';
		END IF;
		IF k NOT IN ('soft_bounce_threshold', 'unsubscribe_page') AND jsonb_typeof(settings->k) <> 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('workspace setting %s must be a string', k),
				DETAIL = format('The value was %s.', settings->k);
		END IF;
	END LOOP;

	v := settings->>'unsubscribe_base_url';
	IF v IS NOT NULL AND (length(v) > 500
			OR v !~ '^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&''()*+;=:@%/?-]*)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_base_url must be an http or https URL of at most 500 characters, without spaces, control characters or any of <>",\{}|^`#',
			DETAIL = format('The value was %s.', broadcast._show(v)),
			HINT = 'For example "https://example.com/unsubscribe"; the signed token is appended after a "/".';
	END IF;

	v := settings->>'unsubscribe_mailto';
	IF v IS NOT NULL AND NOT broadcast.is_valid_email(v)
	   AND (length(v) > 500 OR v !~* '^mailto:[A-Za-z0-9.!#$%&''*+/=~_-]+@[A-Za-z0-9.-]+(\?[A-Za-z0-9._~!$&''()*+;=:@%/?-]*)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_mailto must be an email address or a mailto: URL',
			DETAIL = format('The value was %s.', broadcast._show(v)),
			HINT = 'For example "unsubscribe@example.com" or "mailto:unsubscribe@example.com?subject=unsubscribe", without spaces or line breaks.';
	END IF;

	IF settings ? 'soft_bounce_threshold' THEN
		IF jsonb_typeof(settings->'soft_bounce_threshold') <> 'number'
		   OR (settings->>'soft_bounce_threshold') !~ '^[0-9]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'soft_bounce_threshold must be an integer between 1 and 1000',
				DETAIL = format('The value was %s.', left(settings->>'soft_bounce_threshold', 100));
		END IF;
		n := (settings->>'soft_bounce_threshold')::numeric;
		IF n NOT BETWEEN 1 AND 1000 THEN
			RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
				MESSAGE = 'soft_bounce_threshold must be an integer between 1 and 1000',
				DETAIL = format('The value was %s.', left(settings->>'soft_bounce_threshold', 100));
		END IF;
	END IF;

	/* the edge's unsubscribe page: plain texts, HTML-escaped when shown */
	IF settings ? 'unsubscribe_page' THEN
		page := settings->'unsubscribe_page';
		IF jsonb_typeof(page) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'unsubscribe_page must be a JSON object',
				HINT = 'Its keys are title, text, button and done, each a string.';
		END IF;
		SELECT pk INTO bad_key FROM jsonb_object_keys(page) pk
		 WHERE pk NOT IN ('title', 'text', 'button', 'done')
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown unsubscribe_page key %s', quote_literal(bad_key)),
				HINT = 'Its keys are title, text, button and done, each a string.';
		END IF;
		SELECT e.pk INTO bad_key FROM jsonb_each(page) e(pk, pv)
		 WHERE jsonb_typeof(e.pv) <> 'string' OR btrim(e.pv #>> '{}') = ''
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unsubscribe_page.%s must be a non-empty string', bad_key);
		END IF;
		SELECT e.pk, CASE e.pk WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
		  INTO bad_key, lim
		  FROM jsonb_each_text(page) e(pk, pv)
		 WHERE length(e.pv) > CASE e.pk WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unsubscribe_page.%s is too long', bad_key),
				DETAIL = format('It may have at most %s characters.', lim);
		END IF;
	END IF;
END
$$;

CREATE FUNCTION broadcast._workspaces_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_workspace_settings(NEW.settings);
	IF NEW.settings ? 'sending_domain'
	   AND (NEW.settings->>'sending_domain') !~ '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'sending_domain must be a domain name',
			DETAIL = format('The value was %s.', NEW.settings->'sending_domain');
	END IF;
	IF NEW.settings ? 'default_from_email' THEN
		PERFORM broadcast._check_email(NEW.settings->>'default_from_email', 'default_from_email');
	END IF;
	IF NEW.settings ? 'default_from_name' THEN
		PERFORM broadcast._check_header_text('default_from_name', NEW.settings->>'default_from_name');
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER workspaces_check BEFORE INSERT OR UPDATE OF settings ON broadcast.workspaces
	FOR EACH ROW EXECUTE FUNCTION broadcast._workspaces_check();

/* a stored value out of bounds (written before 1.3) counts as the default, never as an error */
CREATE OR REPLACE FUNCTION broadcast._soft_bounce_threshold(p_workspace_id text)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN jsonb_typeof(w.settings->'soft_bounce_threshold') = 'number'
					 AND (w.settings->>'soft_bounce_threshold') ~ '^[0-9]{1,4}(\.[0-9]+)?$'
					 AND (w.settings->>'soft_bounce_threshold')::numeric BETWEEN 1 AND 1000
				THEN ceil((w.settings->>'soft_bounce_threshold')::numeric)::integer
				ELSE 3 END
	  FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id
$$;

/* ------------------------------------------------------------------------
 * Numbers the API takes: rates, A/B durations, send times
 * ------------------------------------------------------------------------ */

/*
 * rate_per_second of an integration (create_integration, update_integration,
 * attach_shared_integration) or a shared integration: positive, finite and
 * at most 1,000,000 messages per second.  numeric accepts NaN and Infinity,
 * and NaN > 0 holds, so the table's CHECK alone let both through.
 */
CREATE FUNCTION broadcast._rate_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.rate_per_second IS NULL THEN
		RETURN NEW;
	END IF;
	IF NEW.rate_per_second = 'NaN'::numeric OR NEW.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive',
			DETAIL = format('The value was %s.', NEW.rate_per_second),
			HINT = 'Pass NULL (or remove_rate_limit => true) for no workspace limit.';
	END IF;
	IF NEW.rate_per_second > 1000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
			MESSAGE = 'rate_per_second must be at most 1000000',
			DETAIL = format('The value was %s.', left(NEW.rate_per_second::text, 40));
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER integrations_rate_check BEFORE INSERT OR UPDATE OF rate_per_second ON broadcast.integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._rate_check();
CREATE TRIGGER shared_integrations_rate_check
	BEFORE INSERT OR UPDATE OF rate_per_second ON broadcast.shared_integrations
	FOR EACH ROW EXECUTE FUNCTION broadcast._rate_check();

/*
 * A broadcast's A/B duration (create_broadcast, update_broadcast): positive
 * and at most 30 days, so that test start + duration is always a time.  Its
 * send time (schedule_broadcast): finite ('infinity' would hold a task
 * scheduled forever).
 */
CREATE FUNCTION broadcast._broadcasts_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.ab_duration <= interval '0' OR NEW.ab_duration > interval '30 days' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'ab_duration must be positive and at most 30 days',
			DETAIL = format('The value was %s.', NEW.ab_duration);
	END IF;
	IF NEW.send_at IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.send_at IS DISTINCT FROM OLD.send_at)
	   AND NOT isfinite(NEW.send_at) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'send time must be a finite time',
			DETAIL = format('The value was %s.', NEW.send_at);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER broadcasts_check BEFORE INSERT OR UPDATE OF ab_duration, send_at ON broadcast.broadcasts
	FOR EACH ROW EXECUTE FUNCTION broadcast._broadcasts_check();

/* ------------------------------------------------------------------------
 * Contact properties: nested at most 28 levels
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._jsonb_depth(value jsonb)
RETURNS integer
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_jsonb_depth';

/*
 * Templates see properties twice, the deepest under
 * {"contact": {"properties": ...}}, and the renderer's JSON parser stops at
 * 32 levels: a deeper contact was previewed with an error but sent without
 * any of its fields.  Refused on every write (upsert_contacts, a workspace
 * role's INSERT or UPDATE), with a level to spare.
 */
CREATE FUNCTION broadcast._contacts_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	depth integer := broadcast._jsonb_depth(NEW.properties);
BEGIN
	IF depth > 28 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('properties of contact %s are nested %s levels deep; at most 28 are allowed',
							 broadcast._show(NEW.email), depth),
			HINT = 'Flatten the nested objects or arrays; templates cannot render deeper data.';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER contacts_check BEFORE INSERT OR UPDATE OF properties ON broadcast.contacts
	FOR EACH ROW EXECUTE FUNCTION broadcast._contacts_check();

/* ------------------------------------------------------------------------
 * Erasure: the address nowhere but in the suppression (when kept)
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast.forget_contact(
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
	ws text := forget_contact.workspace_id;
	/* the address as a case-insensitive regular expression, for free text that may quote it */
	pat text := regexp_replace(lower(forget_contact.email), '([.+*?^$(){}|\[\]\\])', '\\\1', 'g');
	in_flight bigint;
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
	/*
	 * Keeping the suppression keeps the address (docs/security.md), not
	 * what a provider said about it.
	 */
	IF keep_suppression THEN
		UPDATE broadcast.suppressions s SET detail = 'forgotten'
		 WHERE s.workspace_id = ws AND s.email = addr AND s.detail IS DISTINCT FROM 'forgotten';
	END IF;
	/* events parked for this person's messages carry no address but may quote it in their detail */
	DELETE FROM broadcast.pending_events p
	 WHERE p.workspace_id = ws
	   AND p.message_id IN (SELECT h.message_id FROM broadcast.message_history h
							 WHERE h.workspace_id = ws AND h.email = addr
							UNION ALL
							SELECT q.message_id FROM broadcast.email_queue q
							 WHERE q.workspace_id = ws AND q.email = addr);
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

	/*
	 * The orchestrator's keyset cursors: the address is replaced by the
	 * greatest remaining address below it (or the start), which sorts the
	 * same against every address the workspace still has.  The A/B cutoff
	 * compares (hash, address) pairs, so its replacement must share the hash.
	 */
	UPDATE broadcast.tasks t
	   SET cursor_email = (SELECT max(m.email) FROM broadcast.list_members m
						   WHERE m.workspace_id = t.workspace_id AND m.email < addr)
	 WHERE t.workspace_id = ws AND t.cursor_email = addr;
	UPDATE broadcast.tasks t
	   SET ab_cutoff_email = coalesce((SELECT max(m.email) FROM broadcast.list_members m
									   WHERE m.workspace_id = t.workspace_id AND m.email < addr
										 AND hashtextextended(m.email, hashtext(t.broadcast_id)::int8)
											 = t.ab_cutoff_hash), '')
	 WHERE t.workspace_id = ws AND t.ab_cutoff_email = addr;
	/* error texts (a provider's reply may quote the recipient) */
	UPDATE broadcast.email_queue q SET last_error = regexp_replace(q.last_error, pat, '[forgotten]', 'gi')
	 WHERE q.workspace_id = ws AND q.last_error ~* pat;
	UPDATE broadcast.tasks t SET last_error = regexp_replace(t.last_error, pat, '[forgotten]', 'gi')
	 WHERE t.workspace_id = ws AND t.last_error ~* pat;
	UPDATE broadcast.broadcasts b SET last_error = regexp_replace(b.last_error, pat, '[forgotten]', 'gi')
	 WHERE b.workspace_id = ws AND b.last_error ~* pat;

	/* a message a sender holds right now is recorded when it finishes: say so */
	SELECT count(*) INTO in_flight FROM broadcast.email_queue q
	 WHERE q.workspace_id = ws AND q.email = addr;
	IF in_flight > 0 THEN
		RAISE WARNING USING
			MESSAGE = format('%s message(s) to this address are being sent and will be recorded with it', in_flight),
			HINT = 'Call broadcast.forget_contact() again once they finish (within broadcast_engine.task_lease); it is safe to repeat.';
	END IF;
	RETURN n;
END
$$;
