/*
 * Any AWS account can create a topic and have SNS sign messages for it, so a
 * valid signature proves only that the message came through SNS.  The
 * TopicArn (signed) must be the integration's own, and the Timestamp
 * (signed, kept across SNS's retries) must be recent: a captured message
 * cannot be replayed later.
 */

CREATE OR REPLACE FUNCTION broadcast._check_sns_origin(payload jsonb, topic text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

REVOKE ALL ON FUNCTION broadcast._check_sns_origin(payload jsonb, topic text) FROM PUBLIC;
