CREATE OR REPLACE FUNCTION broadcast._check_id(kind text, id text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF id IS NULL OR NOT broadcast.is_valid_id(id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid %s id: %s', kind, coalesce(quote_literal(id), 'NULL')),
			DETAIL = 'Identifiers are 1 to 63 characters: letters, digits, "_", "." and "-", starting with a letter or digit.';
	END IF;
END
$$;
