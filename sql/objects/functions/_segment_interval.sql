/* a relative period such as "30 days": 1 minute to 10 years */
CREATE OR REPLACE FUNCTION broadcast._segment_interval(v jsonb, path text)
RETURNS interval
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i interval;
BEGIN
	IF jsonb_typeof(v) IS DISTINCT FROM 'string'
	   OR (v #>> '{}') !~* '^\s*\d{1,6}\s+(minute|hour|day|week|month|year)s?\s*$' THEN
		PERFORM broadcast._segment_error(path, format('%s is not a period', coalesce(v::text, 'nothing')),
			'Write a period as a string such as "30 days", "12 hours" or "6 months".');
	END IF;
	i := (v #>> '{}')::interval;
	IF i < interval '1 minute' OR i > interval '10 years' THEN
		PERFORM broadcast._segment_error(path, format('period %s is out of range', v::text),
			'A period is between 1 minute and 10 years.');
	END IF;
	RETURN i;
END
$$;
