/* Postmark webhooks: one object per request (RecordType), or an array of them */

CREATE OR REPLACE FUNCTION broadcast._events_postmark(p jsonb) RETURNS SETOF broadcast.delivery_event
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
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
					WHEN e->>'Type' IN ('HardBounce', 'BadEmailAddress') THEN 'bounced'
					WHEN e->>'Type' IN ('SoftBounce', 'Transient', 'DnsError') THEN 'bounced'
					WHEN e->>'Type' = 'SpamComplaint' THEN 'complained'
					ELSE 'ignored' END
				/* a recipient's own unsubscribe; bounce and complaint suppressions have their own hooks */
				WHEN 'SubscriptionChange' THEN CASE
					WHEN (e->>'SuppressSending')::boolean AND e->>'SuppressionReason' = 'ManualSuppression'
					THEN 'unsubscribed' ELSE 'ignored' END
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(coalesce(e->'DeliveredAt', e->'BouncedAt', e->'ReceivedAt',
												   e->'ChangedAt')), now()),
		   CASE WHEN e->>'RecordType' = 'Bounce' THEN CASE
				WHEN e->>'Type' IN ('HardBounce', 'BadEmailAddress') THEN 'hard'
				WHEN e->>'Type' IN ('SoftBounce', 'Transient', 'DnsError') THEN 'soft' END END,
		   coalesce(e->>'Description', e->>'OriginalLink', e->>'Details')
	  FROM broadcast._json_elements(p) e
$$;
