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
