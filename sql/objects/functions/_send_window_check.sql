/* an administrator's direct writes pass the same checks, and are normalised */
CREATE OR REPLACE FUNCTION broadcast._send_window_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.send_window := broadcast._check_send_window(NEW.send_window);
	RETURN NEW;
END
$$;
