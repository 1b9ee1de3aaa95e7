/*
 * An Amazon SES event (event publishing, "eventType") or feedback
 * notification ("notificationType"), the Message of an SNS notification.
 * Bounces and complaints list their recipients; the others name the
 * message's destination.
 */

CREATE OR REPLACE FUNCTION broadcast._events_ses(m jsonb) RETURNS SETOF broadcast.delivery_event
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
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
