/*
 * A pair's caps as they stand now: the limits, the periods (hour and day of
 * the workspace's time zone) and what was claimed in them.  No row when the
 * pair has no cap.  Readable by workspace roles under row level security.
 */
CREATE OR REPLACE FUNCTION broadcast._cap_state(p_workspace_id text, p_integration_id text,
	OUT hourly_cap integer, OUT daily_limit bigint, OUT daily_reason text,
	OUT hour_start timestamptz, OUT hour_end timestamptz,
	OUT day_start timestamptz, OUT day_end timestamptz,
	OUT sent_this_hour integer, OUT sent_today integer)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT i.hourly_cap, d.lim, d.reason, p.hs, p.he, p.ds, p.de,
		   coalesce((SELECT c.sent FROM broadcast.send_counts c
					  WHERE c.workspace_id = i.workspace_id AND c.integration_id = i.integration_id
						AND c.period = 'hour' AND c.starts_at = p.hs), 0),
		   coalesce((SELECT c.sent FROM broadcast.send_counts c
					  WHERE c.workspace_id = i.workspace_id AND c.integration_id = i.integration_id
						AND c.period = 'day' AND c.starts_at = p.ds), 0)
	  FROM broadcast.integrations i
	  JOIN broadcast.workspaces w ON w.workspace_id = i.workspace_id
	 CROSS JOIN LATERAL (SELECT timezone(w.timezone, now()) AS t) l
	 CROSS JOIN LATERAL (
		SELECT timezone(w.timezone, date_trunc('hour', l.t)) AS hs,
			   timezone(w.timezone, date_trunc('hour', l.t) + interval '1 hour') AS he,
			   timezone(w.timezone, date_trunc('day', l.t)) AS ds,
			   timezone(w.timezone, date_trunc('day', l.t) + interval '1 day') AS de) p
	 CROSS JOIN LATERAL (
		SELECT broadcast._warmup_limit(i.warmup, l.t::date) AS wl) wu
	 CROSS JOIN LATERAL (
		SELECT CASE WHEN wu.wl IS NOT NULL AND (i.daily_cap IS NULL OR wu.wl < i.daily_cap)
					THEN wu.wl ELSE i.daily_cap END AS lim,
			   CASE WHEN wu.wl IS NOT NULL AND (i.daily_cap IS NULL OR wu.wl < i.daily_cap)
					THEN 'warm-up' WHEN i.daily_cap IS NOT NULL THEN 'daily cap' END AS reason) d
	 WHERE i.workspace_id = p_workspace_id AND i.integration_id = p_integration_id
	   AND (i.hourly_cap IS NOT NULL OR i.daily_cap IS NOT NULL OR i.warmup IS NOT NULL)
$$;
