CREATE OR REPLACE FUNCTION broadcast._check_timezone(tz text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	/* pg_timezone_names reads the zone files on every call: skip it for the default */
	IF tz IN ('UTC', 'Etc/UTC') THEN
		RETURN;
	END IF;
	IF tz IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('time zone %s is not recognized', coalesce(quote_literal(tz), 'NULL')),
			HINT = 'Use an IANA time zone name listed in pg_timezone_names, such as "Europe/Paris".';
	END IF;
END
$$;
