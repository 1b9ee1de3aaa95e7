/* moves a reservation by n (negative: gives back), in the periods it was made in */
CREATE OR REPLACE FUNCTION broadcast._cap_add(p_workspace_id text, p_integration_id text,
	p_hour_start timestamptz, p_day_start timestamptz, n integer)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	/* the day row first: the order _cap_reserve locks them in */
	UPDATE broadcast.send_counts c SET sent = greatest(c.sent + n, 0)
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'day' AND c.starts_at = p_day_start;
	UPDATE broadcast.send_counts c SET sent = greatest(c.sent + n, 0)
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'hour' AND c.starts_at = p_hour_start;
$$;
