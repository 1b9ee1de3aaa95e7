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
