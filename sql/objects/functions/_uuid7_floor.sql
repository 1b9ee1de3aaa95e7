/*
 * The smallest UUIDv7 of a moment: its 48-bit Unix millisecond prefix, every
 * other bit zero.  message_history is partitioned by message_id (a UUIDv7,
 * src/uuid7.c), and each month's partition runs from the floor of its first
 * day to the floor of the next month's.
 */

CREATE OR REPLACE FUNCTION broadcast._uuid7_floor(ts timestamp with time zone) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	/* 48 bits of milliseconds: 1970-01-01 to 10889-08-02 */
	IF NOT (ts >= timestamptz '1970-01-01 00:00:00+00' AND ts < timestamptz '10889-08-02 00:00:00+00') THEN
		RAISE EXCEPTION USING ERRCODE = 'datetime_field_overflow',
			MESSAGE = format('time %s is outside what a UUIDv7 can hold', ts),
			HINT = 'A UUIDv7 holds the milliseconds from 1970-01-01 to 10889-08-02.';
	END IF;
	RETURN (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0')
			|| '00000000000000000000')::uuid;
END
$$;
