/* a Prometheus sample value */

CREATE OR REPLACE FUNCTION broadcast._prom_value(v double precision) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT CASE WHEN v IS NULL THEN 'NaN' WHEN v = 'Infinity' THEN '+Inf' WHEN v = '-Infinity' THEN '-Inf'
				ELSE v::text END
$$;
