/*
 * The moment a UUIDv7 was made (its 48-bit millisecond prefix), or NULL for
 * any other kind of UUID (the random ids of 1.0 and 1.1).
 */

CREATE OR REPLACE FUNCTION broadcast._uuid7_time(id uuid) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT CASE WHEN substr(id::text, 15, 1) = '7' AND substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')
				THEN to_timestamp(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0)
		   END
$$;
