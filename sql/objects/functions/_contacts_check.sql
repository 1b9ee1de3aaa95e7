/*
 * Templates see properties twice, the deepest under
 * {"contact": {"properties": ...}}, and the renderer's JSON parser stops at
 * 32 levels: a deeper contact was previewed with an error but sent without
 * any of its fields.  Refused on every write (upsert_contacts, a workspace
 * role's INSERT or UPDATE), with a level to spare.
 */

CREATE OR REPLACE FUNCTION broadcast._contacts_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	depth integer := broadcast._jsonb_depth(NEW.properties);
BEGIN
	IF depth > 28 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('properties of contact %s are nested %s levels deep; at most 28 are allowed',
							 broadcast._show(NEW.email), depth),
			HINT = 'Flatten the nested objects or arrays; templates cannot render deeper data.';
	END IF;
	RETURN NEW;
END
$$;
