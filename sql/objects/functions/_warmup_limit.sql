/*
 * The day's warm-up limit: start on started_on (and before it), multiplied
 * by factor each day after, up to ceiling.  NULL without a schedule.
 */
CREATE OR REPLACE FUNCTION broadcast._warmup_limit(w jsonb, today date)
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT least((w->>'ceiling')::float8,
				 floor((w->>'start')::float8
					   * power((w->>'factor')::float8,
							   least(greatest(today - (w->>'started_on')::date, 0), 400))))::bigint
$$;
