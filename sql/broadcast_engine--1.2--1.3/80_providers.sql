/* ------------------------------------------------------------------------
 * Providers as their documentation says (issue 15, findings 1, 5, 8, 9, 10)
 *
 * The webhook normalisers of Postmark, Resend, SendGrid, Mailjet, SparkPost
 * and Mailgun follow each provider's documented event types; SendGrid's
 * signed Event Webhook is verified (ECDSA P-256); rate_limits() says why
 * an account is paused.  docs/providers/<provider>.md cites the source of
 * each behaviour.
 * ------------------------------------------------------------------------ */

/* ---- SendGrid signed event webhooks ------------------------------------ */

CREATE FUNCTION broadcast._ecdsa_verify(public_key text, data bytea, signature bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_ecdsa_verify';
REVOKE ALL ON FUNCTION broadcast._ecdsa_verify(text, bytea, bytea) FROM PUBLIC;

CREATE FUNCTION broadcast._check_ec_public_key(public_key text)
RETURNS void
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_check_ec_public_key';
REVOKE ALL ON FUNCTION broadcast._check_ec_public_key(text) FROM PUBLIC;

/*
 * SendGrid: ECDSA P-256 with SHA-256 over timestamp || raw body; the
 * base64 DER signature in X-Twilio-Email-Event-Webhook-Signature, the
 * timestamp in X-Twilio-Email-Event-Webhook-Timestamp.
 */
CREATE FUNCTION broadcast._verify_sendgrid(body text, headers jsonb, public_key text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h jsonb;
	sig text;
	ts text;
BEGIN
	SELECT coalesce(jsonb_object_agg(lower(k), v), '{}') INTO h
	  FROM jsonb_each_text(CASE jsonb_typeof(headers) WHEN 'object' THEN headers ELSE '{}' END) AS x(k, v);
	sig := h->>'x-twilio-email-event-webhook-signature';
	ts := h->>'x-twilio-email-event-webhook-timestamp';
	IF sig IS NULL OR ts IS NULL THEN
		PERFORM broadcast._signature_error('sendgrid',
			'The X-Twilio-Email-Event-Webhook-Signature and X-Twilio-Email-Event-Webhook-Timestamp headers are required.');
	END IF;
	IF sig !~ '^[A-Za-z0-9+/]+={0,2}$' OR length(sig) % 4 <> 0 OR length(sig) > 200 THEN
		PERFORM broadcast._signature_error('sendgrid', 'The signature is not base64.');
	END IF;
	IF NOT broadcast._ecdsa_verify(public_key, convert_to(ts || body, 'UTF8'), decode(sig, 'base64')) THEN
		PERFORM broadcast._signature_error('sendgrid', 'The signature does not match the body.');
	END IF;
	PERFORM broadcast._check_signature_age('sendgrid', ts);
END
$$;
REVOKE ALL ON FUNCTION broadcast._verify_sendgrid(text, jsonb, text) FROM PUBLIC;

/* SendGrid's key is the signed Event Webhook's public key */
CREATE OR REPLACE FUNCTION broadcast.set_webhook_secret(workspace_id text, integration_id text, secret text)
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
	IF prov NOT IN ('mailgun', 'resend', 'ses', 'sendgrid') THEN
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
		ELSIF prov = 'sendgrid' THEN
			PERFORM broadcast._check_ec_public_key(secret);
		END IF;
	END IF;
	INSERT INTO broadcast.integration_secrets AS s (workspace_id, integration_id, webhook_secret)
	VALUES (set_webhook_secret.workspace_id, set_webhook_secret.integration_id, secret)
	ON CONFLICT ON CONSTRAINT integration_secrets_pkey DO UPDATE SET webhook_secret = EXCLUDED.webhook_secret;
END
$$;

/*
 * SES messages are checked against the integration's topic and for age;
 * SendGrid's are verified once its webhook's public key is stored (its
 * signing is optional, so an integration without a key accepts them as
 * before).
 */
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
		IF key IS NOT NULL THEN
			IF raw_body IS NULL THEN
				RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
					MESSAGE = 'SendGrid signatures cover the raw request body',
					HINT = 'Call broadcast.record_webhook() with the body exactly as received and the X-Twilio-Email-Event-Webhook-* headers.';
			END IF;
			PERFORM broadcast._verify_sendgrid(raw_body, headers, key);
		END IF;
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


/* ---- Webhook normalisers, per each provider's documented event types ---- */

/*
 * SendGrid Event Webhook: an array of events, custom_args as top-level keys.
 * "dropped" (SendGrid never tried the address) follows its reason: a
 * bounced or invalid address is a hard bounce, a spam-reporting address a
 * complaint, an unsubscribed one an unsubscribe; a content or header
 * reason says nothing about the address.
 */
CREATE OR REPLACE FUNCTION broadcast._events_sendgrid(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
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
				WHEN 'dropped' THEN CASE
					WHEN e->>'reason' IN ('Bounced Address', 'Invalid') THEN 'bounced'
					WHEN e->>'reason' = 'Spam Reporting Address' THEN 'complained'
					WHEN e->>'reason' = 'Unsubscribed Address' THEN 'unsubscribed'
					ELSE 'ignored' END
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'timestamp'), now()),
		   /* "blocked" is about the message or the sending IP, not the address */
		   CASE WHEN e->>'event' = 'bounce'
				THEN CASE WHEN e->>'type' = 'blocked' THEN 'soft' ELSE 'hard' END
				WHEN e->>'event' = 'dropped' AND e->>'reason' IN ('Bounced Address', 'Invalid')
				THEN 'hard' END,
		   coalesce(e->>'reason', e->>'url')
	  FROM broadcast._json_elements(p) e
$$;

/*
 * Mailgun webhooks: {"signature": {...}, "event-data": {...}}.  A "failed"
 * event whose reason is a suppression names the list: suppress-complaint is
 * a complaint, suppress-unsubscribe an unsubscribe, suppress-bounce a hard
 * bounce.
 */
CREATE OR REPLACE FUNCTION broadcast._events_mailgun(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT broadcast._uuid_or_null(d->'user-variables'->>'message_id'),
		   nullif(btrim(d->'message'->'headers'->>'message-id', '<> '), ''),
		   lower(d->>'recipient'),
		   CASE d->>'event'
				WHEN 'delivered' THEN 'delivered'
				WHEN 'opened' THEN 'opened'
				WHEN 'clicked' THEN 'clicked'
				WHEN 'failed' THEN CASE d->>'reason'
					WHEN 'suppress-complaint' THEN 'complained'
					WHEN 'suppress-unsubscribe' THEN 'unsubscribed'
					ELSE 'bounced' END
				WHEN 'complained' THEN 'complained'
				WHEN 'unsubscribed' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(d->'timestamp'), now()),
		   CASE WHEN d->>'event' = 'failed'
					 AND coalesce(d->>'reason', '') NOT IN ('suppress-complaint', 'suppress-unsubscribe')
				THEN CASE WHEN d->>'severity' = 'permanent' THEN 'hard' ELSE 'soft' END END,
		   coalesce(nullif(d->'delivery-status'->>'message', ''), d->'delivery-status'->>'description',
					d->>'reason', d->>'url')
	  FROM broadcast._json_elements(p) x
	 CROSS JOIN LATERAL (SELECT x->'event-data' AS d) y
	 WHERE jsonb_typeof(d) = 'object'
$$;

/*
 * Postmark webhooks: one object per request (RecordType), or an array.
 * Bounce types from Postmark's bounce-type table: the address is bad for
 * HardBounce, BadEmailAddress and ManuallyDeactivated, and whenever
 * Postmark deactivated it (Inactive); SoftBounce, Transient, DnsError and
 * Blocked are soft.  On Broadcast streams complaints and hard-bounce
 * suppressions arrive as SubscriptionChange with SuppressionReason
 * SpamComplaint or HardBounce; ManualSuppression is the recipient's own
 * unsubscribe.
 */
CREATE OR REPLACE FUNCTION broadcast._events_postmark(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
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
					WHEN e->>'Type' IN ('SpamComplaint', 'SpamNotification') THEN 'complained'
					WHEN e->>'Type' = 'Unsubscribe' THEN 'unsubscribed'
					WHEN b.kind IS NOT NULL THEN 'bounced'
					ELSE 'ignored' END
				WHEN 'SubscriptionChange' THEN CASE
					WHEN NOT coalesce((e->>'SuppressSending')::boolean, false) THEN 'ignored'
					WHEN e->>'SuppressionReason' = 'ManualSuppression' THEN 'unsubscribed'
					WHEN e->>'SuppressionReason' = 'SpamComplaint' THEN 'complained'
					WHEN e->>'SuppressionReason' = 'HardBounce' THEN 'bounced'
					ELSE 'ignored' END
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(coalesce(e->'DeliveredAt', e->'BouncedAt', e->'ReceivedAt',
												   e->'ChangedAt')), now()),
		   CASE WHEN e->>'RecordType' = 'Bounce' AND e->>'Type' NOT IN ('SpamComplaint', 'SpamNotification', 'Unsubscribe')
				THEN b.kind
				WHEN e->>'RecordType' = 'SubscriptionChange' AND coalesce((e->>'SuppressSending')::boolean, false)
					 AND e->>'SuppressionReason' = 'HardBounce'
				THEN 'hard' END,
		   coalesce(e->>'Description', e->>'OriginalLink', e->>'Details', e->>'SuppressionReason')
	  FROM broadcast._json_elements(p) e
	 CROSS JOIN LATERAL (
		SELECT CASE
			WHEN e->>'Type' IN ('HardBounce', 'BadEmailAddress', 'ManuallyDeactivated') THEN 'hard'
			WHEN e->>'Inactive' = 'true' THEN 'hard'
			WHEN e->>'Type' IN ('SoftBounce', 'Transient', 'DnsError', 'Blocked') THEN 'soft'
			END AS kind) b
$$;

/*
 * SparkPost webhook batches: [{"msys": {"<category>_event": {...}}}, ...].
 * policy_rejection (SparkPost refused the recipient, its suppression list
 * among the reasons) is a failure: hard for the bounce classes of a bad or
 * suppressed address (10, 25, 30, 90), soft otherwise.
 */
CREATE OR REPLACE FUNCTION broadcast._events_sparkpost(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
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
				WHEN 'policy_rejection' THEN 'bounced'
				WHEN 'spam_complaint' THEN 'complained'
				WHEN 'list_unsubscribe' THEN 'unsubscribed'
				WHEN 'link_unsubscribe' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'timestamp'), now()),
		   /* SparkPost's bounce classes 10, 30 and 90 are its hard bounces; 25 is its suppression list */
		   CASE WHEN e->>'type' IN ('bounce', 'out_of_band')
				THEN CASE WHEN e->>'bounce_class' IN ('10', '30', '90') THEN 'hard' ELSE 'soft' END
				WHEN e->>'type' = 'policy_rejection'
				THEN CASE WHEN e->>'bounce_class' IN ('10', '25', '30', '90') THEN 'hard' ELSE 'soft' END END,
		   coalesce(e->>'reason', e->>'raw_reason', e->>'target_link_url')
	  FROM broadcast._json_elements(p) x
	 CROSS JOIN LATERAL (SELECT v AS e FROM jsonb_each(x->'msys') ev(k, v)
						  WHERE jsonb_typeof(x->'msys') = 'object' AND jsonb_typeof(v) = 'object'
						  LIMIT 1) y
$$;

/*
 * Mailjet Event API: one event object, or an array when grouped.  "blocked"
 * (Mailjet did not send) is the address's fault when error_related_to is
 * "recipient" (user unknown, preblocked, ...): a hard bounce; a blocked
 * message for its content or the sender says nothing about the address.
 */
CREATE OR REPLACE FUNCTION broadcast._events_mailjet(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT broadcast._uuid_or_null(e->>'CustomID'),
		   nullif(e->>'MessageID', ''),
		   lower(e->>'email'),
		   CASE e->>'event'
				WHEN 'sent' THEN 'delivered'
				WHEN 'open' THEN 'opened'
				WHEN 'click' THEN 'clicked'
				WHEN 'bounce' THEN 'bounced'
				WHEN 'blocked' THEN CASE WHEN e->>'error_related_to' = 'recipient' THEN 'bounced'
										 ELSE 'ignored' END
				WHEN 'spam' THEN 'complained'
				WHEN 'unsub' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'time'), now()),
		   CASE WHEN e->>'event' = 'bounce'
				THEN CASE WHEN (e->>'hard_bounce')::boolean THEN 'hard' ELSE 'soft' END
				WHEN e->>'event' = 'blocked' AND e->>'error_related_to' = 'recipient'
				THEN 'hard' END,
		   coalesce(nullif(e->>'error', ''), e->>'url', e->>'source')
	  FROM broadcast._json_elements(p) e
$$;

/*
 * Resend webhooks (Svix): {"type": "email.delivered", "created_at": ...,
 * "data": {...}}.  Resend documents email.bounced as the recipient's server
 * having permanently rejected the email, whatever data.bounce.type says:
 * a hard bounce.  email.suppressed (Resend did not send to an address on
 * its suppression list) is one too; email.delivery_delayed is not a
 * failure yet.
 */
CREATE OR REPLACE FUNCTION broadcast._events_resend(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT broadcast._uuid_or_null(broadcast._tag_value(d->'tags', 'message_id')),
		   nullif(d->>'email_id', ''),
		   lower(CASE jsonb_typeof(d->'to') WHEN 'array' THEN d->'to'->>0 ELSE d->>'to' END),
		   CASE e->>'type'
				WHEN 'email.delivered' THEN 'delivered'
				WHEN 'email.opened' THEN 'opened'
				WHEN 'email.clicked' THEN 'clicked'
				WHEN 'email.bounced' THEN 'bounced'
				WHEN 'email.suppressed' THEN 'bounced'
				WHEN 'email.complained' THEN 'complained'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(coalesce(d->'click'->'timestamp', e->'created_at')), now()),
		   CASE WHEN e->>'type' IN ('email.bounced', 'email.suppressed') THEN 'hard' END,
		   coalesce(d->'bounce'->>'message', d->'suppressed'->>'message', d->'click'->>'link')
	  FROM broadcast._json_elements(p) e
	 CROSS JOIN LATERAL (SELECT e->'data' AS d) y
$$;

/* ---- rate_limits(): why an account is paused --------------------------- */

DROP FUNCTION broadcast.rate_limits();
CREATE FUNCTION broadcast.rate_limits(
	OUT scope text, OUT workspace_id text, OUT integration_id text,
	OUT rate_per_second float8, OUT tokens float8, OUT paused_until timestamptz,
	OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint,
	OUT paused_reason text)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_rate_limits';
REVOKE ALL ON FUNCTION broadcast.rate_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.rate_limits() TO broadcast_admin;
COMMENT ON FUNCTION broadcast.rate_limits() IS
	'Rate buckets in use: rate, tokens, a provider''s pause and why (paused_reason: a quota used up, sending disabled), the circuit breaker';

/* ---- resuming an integration whose account was paused ------------------ */

CREATE FUNCTION broadcast._rate_resume(account_key text)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'be_rate_resume';
REVOKE ALL ON FUNCTION broadcast._rate_resume(text) FROM PUBLIC;

/*
 * Ends the pause of an integration's provider account (rate_limits() shows
 * paused_until and paused_reason) once an operator fixed the account: the
 * senders send again at once instead of waiting for the next probe.  The
 * key is the sender's (be_rate_keys in src/ratelimit.c): a shared
 * integration's account bucket is the shared account's, so resuming it
 * resumes every workspace using it.  True when a pause ended.
 */
CREATE FUNCTION broadcast.resume_integration(workspace_id text, integration_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
BEGIN
	PERFORM broadcast._require_admin('resume an integration');
	PERFORM broadcast._check_id('integration', resume_integration.integration_id);
	SELECT CASE WHEN i.shared_id IS NOT NULL
				THEN 's' || chr(31) || chr(31) || i.shared_id || chr(31) || coalesce(sh.incarnation::text, '')
				ELSE 'w' || chr(31) || i.workspace_id || chr(31) || i.integration_id || chr(31)
					 || coalesce(i.incarnation::text, '') END
	  INTO k
	  FROM broadcast.integrations i
	  LEFT JOIN broadcast.shared_integrations sh ON sh.shared_id = i.shared_id
	 WHERE i.workspace_id = resume_integration.workspace_id
	   AND i.integration_id = resume_integration.integration_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(resume_integration.integration_id),
							 quote_literal(resume_integration.workspace_id));
	END IF;
	RETURN broadcast._rate_resume(k);
END
$$;
REVOKE ALL ON FUNCTION broadcast.resume_integration(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.resume_integration(text, text) TO broadcast_admin;
COMMENT ON FUNCTION broadcast.resume_integration(text, text) IS
	'Ends the pause of an integration''s provider account (a quota used up, sending disabled) once it is fixed';
