/*
 * Creates the partition of message_history for one month (UTC), named
 * message_history_pYYYYMM, unless it exists; returns whether it created it.
 * Rows of that month already in the DEFAULT partition move into it first
 * (ATTACH would refuse them), with the DEFAULT partition locked so that no
 * new one arrives in between.  A partition is never an extension member,
 * even when the 1.3 update makes it: pg_dump then writes it as a plain
 * table with its rows.
 */

CREATE OR REPLACE FUNCTION broadcast._history_add_partition(month date) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	part text := 'message_history_p' || to_char(month, 'YYYYMM');
	lo uuid;
	hi uuid;
	rel oid;
BEGIN
	IF month IS NULL OR extract(day FROM month) <> 1
	   OR month < date '1970-01-01' OR month > date '9999-11-01' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s is not the first day of a month between 1970 and 9999', month);
	END IF;
	IF to_regclass('broadcast.' || quote_ident(part)) IS NOT NULL THEN
		RETURN false;
	END IF;
	lo := broadcast._uuid7_floor(month::timestamp AT TIME ZONE 'UTC');
	hi := broadcast._uuid7_floor((month + interval '1 month')::timestamp AT TIME ZONE 'UTC');

	LOCK TABLE broadcast.message_history_default IN ACCESS EXCLUSIVE MODE;
	EXECUTE format('CREATE TABLE broadcast.%I (LIKE broadcast.message_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
				   part);
	rel := ('broadcast.' || quote_ident(part))::regclass;
	IF EXISTS (SELECT 1 FROM pg_depend d
				WHERE d.classid = 'pg_class'::regclass AND d.objid = rel AND d.deptype = 'e') THEN
		EXECUTE format('ALTER EXTENSION broadcast_engine DROP TABLE broadcast.%I', part);
	END IF;
	EXECUTE format('WITH moved AS (DELETE FROM broadcast.message_history_default d'
				   '                WHERE d.message_id >= $1 AND d.message_id < $2 RETURNING d.*)'
				   ' INSERT INTO broadcast.%I SELECT * FROM moved', part) USING lo, hi;
	PERFORM broadcast._history_partition_indexes(part);
	EXECUTE format('ALTER TABLE broadcast.message_history ATTACH PARTITION broadcast.%I FOR VALUES FROM (%L) TO (%L)',
				   part, lo, hi);
	EXECUTE format('COMMENT ON TABLE broadcast.%I IS %L', part,
				   format('History of the messages made in %s (UTC); dropped whole by maintain_history()',
						  to_char(month, 'YYYY-MM')));
	RETURN true;
END
$$;

REVOKE ALL ON FUNCTION broadcast._history_add_partition(month date) FROM PUBLIC;
