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

REVOKE ALL ON FUNCTION broadcast._record(p_workspace_id text, p_integration_id text, payload jsonb, raw_body text, headers jsonb, OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text) FROM PUBLIC;
