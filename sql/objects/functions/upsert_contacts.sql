/* ------------------------------------------------------------------------
 * Contacts and lists
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast.upsert_contacts(workspace_id text, contacts jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	bad record;
	n bigint;
BEGIN
	PERFORM broadcast._authorize(upsert_contacts.workspace_id);
	IF contacts IS NULL OR jsonb_typeof(contacts) <> 'array' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'contacts must be a JSON array of objects',
			HINT = 'For example: [{"email": "ada@example.com", "first_name": "Ada"}].';
	END IF;

	/* validate every element before writing anything */
	SELECT e.ord, e.value INTO bad
	  FROM jsonb_array_elements(contacts) WITH ORDINALITY AS e(value, ord)
	 WHERE jsonb_typeof(e.value) <> 'object'
		OR NOT (e.value ? 'email')
		OR jsonb_typeof(e.value->'email') <> 'string'
		OR NOT broadcast.is_valid_email(e.value->>'email')
		OR (e.value ? 'properties' AND jsonb_typeof(e.value->'properties') NOT IN ('object', 'null'))
		OR EXISTS (SELECT 1 FROM jsonb_object_keys(e.value) k
					WHERE k NOT IN ('email', 'first_name', 'last_name', 'language', 'timezone', 'properties'))
	 ORDER BY e.ord LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid contact at position %s', bad.ord),
			DETAIL = format('The element was %s.', left(bad.value::text, 200)),
			HINT = 'Each contact is an object with a valid "email" and optionally first_name, last_name, language, timezone (IANA name) and properties (an object).';
	END IF;

	SELECT t.tz AS tz INTO bad
	  FROM (SELECT DISTINCT e->>'timezone' AS tz FROM jsonb_array_elements(contacts) e
			 WHERE e->>'timezone' IS NOT NULL) t
	 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = t.tz)
	 LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_timezone(bad.tz);
	END IF;

	/* the last occurrence of an address in the payload wins */
	INSERT INTO broadcast.contacts AS c
		(workspace_id, email, first_name, last_name, language, timezone, properties)
	SELECT DISTINCT ON (lower(e.value->>'email'))
		   upsert_contacts.workspace_id, lower(e.value->>'email'),
		   e.value->>'first_name', e.value->>'last_name', e.value->>'language',
		   e.value->>'timezone', coalesce(nullif(e.value->'properties', 'null'), '{}')
	  FROM jsonb_array_elements(contacts) WITH ORDINALITY AS e(value, ord)
	 ORDER BY lower(e.value->>'email'), e.ord DESC
	ON CONFLICT ON CONSTRAINT contacts_pkey DO UPDATE SET
		first_name = coalesce(EXCLUDED.first_name, c.first_name),
		last_name = coalesce(EXCLUDED.last_name, c.last_name),
		language = coalesce(EXCLUDED.language, c.language),
		timezone = coalesce(EXCLUDED.timezone, c.timezone),
		properties = c.properties || EXCLUDED.properties,
		updated_at = now();
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
