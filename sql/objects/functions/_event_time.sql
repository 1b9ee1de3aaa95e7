/* a JSON time: Unix seconds (number or numeric string) or ISO 8601; NULL when absent */

CREATE OR REPLACE FUNCTION broadcast._event_time(v jsonb) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
	SELECT CASE
		WHEN v IS NULL OR jsonb_typeof(v) NOT IN ('number', 'string') THEN NULL
		WHEN jsonb_typeof(v) = 'number' THEN to_timestamp((v #>> '{}')::float8)
		WHEN (v #>> '{}') ~ '^[0-9]{9,11}(\.[0-9]+)?$' THEN to_timestamp((v #>> '{}')::float8)
		WHEN (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
			THEN (v #>> '{}')::timestamptz
		/* no zone: UTC, whatever the session's TimeZone */
		WHEN (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$'
			THEN (v #>> '{}')::timestamp AT TIME ZONE 'UTC'
	END
$_$;
