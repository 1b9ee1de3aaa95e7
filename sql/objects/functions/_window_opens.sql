/*
 * NULL when the (normalised) window w is open at time at in zone tz;
 * otherwise when it opens next.
 */
CREATE OR REPLACE FUNCTION broadcast._window_opens(w jsonb, tz text, at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN w->'days' ? to_char(l.t, 'dy') AND l.t::time >= (w->>'from')::time
			 AND (w->>'to' = '24:00' OR l.t::time < (w->>'to')::time) THEN NULL
		ELSE (SELECT timezone(tz, min(d + (w->>'from')::time))
				FROM generate_series(date_trunc('day', l.t), date_trunc('day', l.t) + interval '7 days',
									 interval '1 day') d
			   WHERE w->'days' ? to_char(d, 'dy') AND d + (w->>'from')::time > l.t) END
	  FROM (SELECT timezone(tz, at) AS t) l
$$;
