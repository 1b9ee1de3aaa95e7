/* per capped integration: its caps, what went this hour and today, what waits and until when */
CREATE VIEW broadcast.sending_caps WITH (security_invoker = true) AS
SELECT i.workspace_id, i.integration_id, s.hourly_cap, s.sent_this_hour,
	   i.daily_cap, broadcast._warmup_limit(i.warmup, timezone(w.timezone, now())::date) AS warmup_today,
	   s.sent_today,
	   CASE WHEN s.daily_limit IS NOT NULL AND s.sent_today >= s.daily_limit THEN s.daily_reason
			WHEN s.sent_this_hour >= s.hourly_cap THEN 'hourly cap' END AS waiting_for,
	   CASE WHEN s.daily_limit IS NOT NULL AND s.sent_today >= s.daily_limit THEN s.day_end
			WHEN s.sent_this_hour >= s.hourly_cap THEN s.hour_end END AS waiting_until
  FROM broadcast.integrations i
  JOIN broadcast.workspaces w ON w.workspace_id = i.workspace_id
 CROSS JOIN LATERAL broadcast._cap_state(i.workspace_id, i.integration_id) s;

GRANT SELECT ON broadcast.sending_caps TO broadcast_user, broadcast_admin;

COMMENT ON VIEW broadcast.sending_caps IS
	'Integrations with caps or warm-up: the limits, what was sent this hour and today, and what mail waits for';
