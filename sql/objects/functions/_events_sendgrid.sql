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
