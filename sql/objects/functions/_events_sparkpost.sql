/*
 * SparkPost webhook batches: [{"msys": {"<category>_event": {...}}}, ...].
 * policy_rejection (SparkPost refused the recipient, its suppression list
 * among the reasons) is a failure: hard for the bounce classes of a bad or
 * suppressed address (10, 25, 30, 90), soft otherwise.
 */
CREATE OR REPLACE FUNCTION broadcast._events_sparkpost(p jsonb)
RETURNS SETOF broadcast.delivery_event
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT broadcast._uuid_or_null(e->'rcpt_meta'->>'message_id'),
		   nullif(e->>'transmission_id', ''),
		   lower(e->>'rcpt_to'),
		   CASE e->>'type'
				WHEN 'delivery' THEN 'delivered'
				WHEN 'open' THEN 'opened'
				WHEN 'initial_open' THEN 'opened'
				WHEN 'amp_open' THEN 'opened'
				WHEN 'amp_initial_open' THEN 'opened'
				WHEN 'click' THEN 'clicked'
				WHEN 'amp_click' THEN 'clicked'
				WHEN 'bounce' THEN 'bounced'
				WHEN 'out_of_band' THEN 'bounced'
				WHEN 'policy_rejection' THEN 'bounced'
				WHEN 'spam_complaint' THEN 'complained'
				WHEN 'list_unsubscribe' THEN 'unsubscribed'
				WHEN 'link_unsubscribe' THEN 'unsubscribed'
				ELSE 'ignored' END,
		   coalesce(broadcast._event_time(e->'timestamp'), now()),
		   /* SparkPost's bounce classes 10, 30 and 90 are its hard bounces; 25 is its suppression list */
		   CASE WHEN e->>'type' IN ('bounce', 'out_of_band')
				THEN CASE WHEN e->>'bounce_class' IN ('10', '30', '90') THEN 'hard' ELSE 'soft' END
				WHEN e->>'type' = 'policy_rejection'
				THEN CASE WHEN e->>'bounce_class' IN ('10', '25', '30', '90') THEN 'hard' ELSE 'soft' END END,
		   coalesce(e->>'reason', e->>'raw_reason', e->>'target_link_url')
	  FROM broadcast._json_elements(p) x
	 CROSS JOIN LATERAL (SELECT v AS e FROM jsonb_each(x->'msys') ev(k, v)
						  WHERE jsonb_typeof(x->'msys') = 'object' AND jsonb_typeof(v) = 'object'
						  LIMIT 1) y
$$;
