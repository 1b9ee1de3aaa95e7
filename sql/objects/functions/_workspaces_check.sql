CREATE OR REPLACE FUNCTION broadcast._workspaces_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
	PERFORM broadcast._check_workspace_settings(NEW.settings);
	IF NEW.settings ? 'sending_domain'
	   AND (NEW.settings->>'sending_domain') !~ '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'sending_domain must be a domain name',
			DETAIL = format('The value was %s.', NEW.settings->'sending_domain');
	END IF;
	IF NEW.settings ? 'default_from_email' THEN
		PERFORM broadcast._check_email(NEW.settings->>'default_from_email', 'default_from_email');
	END IF;
	IF NEW.settings ? 'default_from_name' THEN
		PERFORM broadcast._check_header_text('default_from_name', NEW.settings->>'default_from_name');
	END IF;
	RETURN NEW;
END
$_$;
