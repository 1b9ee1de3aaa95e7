/* an absolute time such as "2026-01-31" or "2026-01-31T08:00:00Z" */
CREATE OR REPLACE FUNCTION broadcast._segment_time(v jsonb, path text)
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t timestamptz;
BEGIN
	IF jsonb_typeof(v) = 'string' THEN
		t := broadcast._try_timestamptz(v #>> '{}');
	END IF;
	IF t IS NULL OR NOT isfinite(t) THEN
		PERFORM broadcast._segment_error(path, format('%s is not a date', coalesce(v::text, 'nothing')),
			'Write dates as ISO 8601 strings, such as "2026-01-31" or "2026-01-31T08:00:00Z".');
	END IF;
	RETURN t;
END
$$;
