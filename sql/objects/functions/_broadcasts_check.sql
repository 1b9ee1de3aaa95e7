/*
 * A broadcast's A/B duration (create_broadcast, update_broadcast): positive
 * and at most 30 days, so that test start + duration is always a time.  Its
 * send time (schedule_broadcast): finite ('infinity' would hold a task
 * scheduled forever).
 */

CREATE OR REPLACE FUNCTION broadcast._broadcasts_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF NEW.ab_duration <= interval '0' OR NEW.ab_duration > interval '30 days' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'ab_duration must be positive and at most 30 days',
			DETAIL = format('The value was %s.', NEW.ab_duration);
	END IF;
	IF NEW.send_at IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.send_at IS DISTINCT FROM OLD.send_at)
	   AND NOT isfinite(NEW.send_at) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'send time must be a finite time',
			DETAIL = format('The value was %s.', NEW.send_at);
	END IF;
	RETURN NEW;
END
$$;
