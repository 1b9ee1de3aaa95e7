/*
 * rate_per_second of an integration (create_integration, update_integration,
 * attach_shared_integration) or a shared integration: positive, finite and
 * at most 1,000,000 messages per second.  numeric accepts NaN and Infinity,
 * and NaN > 0 holds, so the table's CHECK alone let both through.
 */

CREATE OR REPLACE FUNCTION broadcast._rate_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF NEW.rate_per_second IS NULL THEN
		RETURN NEW;
	END IF;
	IF NEW.rate_per_second = 'NaN'::numeric OR NEW.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive',
			DETAIL = format('The value was %s.', NEW.rate_per_second),
			HINT = 'Pass NULL (or remove_rate_limit => true) for no workspace limit.';
	END IF;
	IF NEW.rate_per_second > 1000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
			MESSAGE = 'rate_per_second must be at most 1000000',
			DETAIL = format('The value was %s.', left(NEW.rate_per_second::text, 40));
	END IF;
	RETURN NEW;
END
$$;
