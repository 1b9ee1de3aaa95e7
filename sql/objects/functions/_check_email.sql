CREATE OR REPLACE FUNCTION broadcast._check_email(email text, what text DEFAULT 'email address'::text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF email IS NULL OR NOT broadcast.is_valid_email(email) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid %s: %s', what, broadcast._show(email)),
			HINT = 'Use a plain address such as "name@example.com", without a display name.';
	END IF;
END
$$;
