/* an administrator's direct writes pass the same checks, and are normalised */
CREATE OR REPLACE FUNCTION broadcast._warmup_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.warmup := broadcast._check_warmup(NEW.warmup);
	RETURN NEW;
END
$$;
