/* header-bound text must not be able to start a new header line */

CREATE OR REPLACE FUNCTION broadcast._check_header_text(field text, value text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF value ~ '[\x01-\x08\x0a-\x1f\x7f]' THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s must not contain line breaks or control characters', field),
			DETAIL = format('The value was %s.', broadcast._show(value)),
			HINT = 'Header fields are single lines; remove CR, LF and other control characters.';
	END IF;
END
$$;
