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
