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
