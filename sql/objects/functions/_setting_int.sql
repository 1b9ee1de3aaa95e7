/*
 * An integer parameter of the engine as SQL reads it, clamped to its
 * bounds.  Values with a unit ("5min", "1d") are read as seconds.  When the
 * library is not loaded in this backend, anyone could SET a placeholder of
 * the same name, so the bounds are applied here too, and anything
 * unreadable gives the default.
 */

CREATE OR REPLACE FUNCTION broadcast._setting_int(name text, dflt integer, lo integer, hi integer) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
	v text := nullif(btrim(current_setting(name, true)), '');
	n numeric;
BEGIN
	IF v IS NULL THEN
		RETURN dflt;
	ELSIF v ~ '^-?[0-9]{1,10}$' THEN
		n := v::numeric;
	ELSIF v ~ '^[0-9]{1,10} ?(ms|s|min|h|d)$' THEN
		n := extract(epoch FROM v::interval);
	ELSE
		RETURN dflt;
	END IF;
	RETURN least(greatest(n, lo), hi)::integer;
END
$_$;
