/* scheduling is an act of this database: it records the current nonce */

CREATE OR REPLACE FUNCTION broadcast._broadcasts_stamp_nonce() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	NEW.instance_nonce := broadcast._instance_nonce();
	RETURN NEW;
END
$$;
