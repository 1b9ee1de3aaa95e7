/*
 * The generic form, for SMTP setups and custom pipelines:
 *	{"events": [{"message_id": "<uuid>", "event": "delivered", "timestamp": ...,
 *				 "bounce_type": "hard", "email": ..., "provider_message_id": ...,
 *				 "detail": ...}, ...]}
 * (or just the array).  It is ours, so it is checked strictly.  An event
 * without our id must name the provider's id and the recipient: a provider
 * id alone may be shared by a batch's recipients.
 */

CREATE OR REPLACE FUNCTION broadcast._events_generic(p jsonb) RETURNS SETOF broadcast.delivery_event
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
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
		OR (NOT x.e ? 'message_id' AND (coalesce(x.e->>'provider_message_id', '') = ''
										OR coalesce(x.e->>'email', '') = ''))
		OR (x.e ? 'bounce_type' AND coalesce(x.e->>'bounce_type', '') NOT IN ('hard', 'soft'))
		OR (x.e ? 'timestamp' AND broadcast._event_time(x.e->'timestamp') IS NULL)
	 ORDER BY x.ord LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid event at position %s', bad.ord),
			DETAIL = format('The element was %s.', left(bad.e::text, 200)),
			HINT = 'Each event is an object with "event" (delivered, opened, clicked, bounced, complained or unsubscribed), "message_id" (the UUID we sent) or both "provider_message_id" and "email" (the recipient), and optionally "timestamp" (ISO 8601 or Unix seconds), "bounce_type" (hard or soft) and "detail".';
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
