CREATE OR REPLACE FUNCTION broadcast._templates_immutable() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = 'object_not_in_prerequisite_state',
		MESSAGE = 'template versions cannot be changed',
		HINT = 'Call broadcast.create_template() to add a new version.';
END
$$;
