/* a Prometheus label value: backslash, double quote and newline escaped */

CREATE OR REPLACE FUNCTION broadcast._prom_label(v text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT '"' || replace(replace(replace(coalesce(v, ''), E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"'
$$;
