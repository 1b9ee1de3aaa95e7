-- left executable by PUBLIC: the trigger runs as whoever writes the row

CREATE OR REPLACE FUNCTION broadcast._integration_target_trigger() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	/* a config written before 1.3, or before a setting changed, stays until it changes */
	IF TG_OP = 'INSERT' OR NEW.config IS DISTINCT FROM OLD.config OR NEW.provider IS DISTINCT FROM OLD.provider THEN
		PERFORM broadcast._check_integration_target(
			NEW.config->>'endpoint',
			CASE WHEN NEW.provider = 'smtp' THEN NEW.config->>'host' END,
			CASE WHEN NEW.provider = 'smtp' THEN coalesce(NEW.config->>'tls', 'starttls') END);
	END IF;
	RETURN NEW;
END
$$;
