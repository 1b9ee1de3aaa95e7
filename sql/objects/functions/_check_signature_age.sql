/* rejects a signature timestamp too far from now (broadcast_engine.webhook_tolerance) */

CREATE OR REPLACE FUNCTION broadcast._check_signature_age(provider text, ts text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
	/* shown with a unit ("5min"), which interval input understands */
	tolerance integer := coalesce(extract(epoch FROM nullif(current_setting('broadcast_engine.webhook_tolerance', true), '')::interval)::integer, 300);
	skew numeric;
BEGIN
	IF ts IS NULL OR ts !~ '^[0-9]{1,12}$' THEN
		PERFORM broadcast._signature_error(provider, format('The signature timestamp %s is not a Unix time.',
															 broadcast._show(ts)));
	END IF;
	skew := abs(extract(epoch FROM now()) - ts::numeric);
	IF tolerance > 0 AND skew > tolerance THEN
		PERFORM broadcast._signature_error(provider,
			format('The signature timestamp is %s seconds away from the server''s clock; at most %s are accepted (broadcast_engine.webhook_tolerance).',
				   floor(skew), tolerance));
	END IF;
END
$_$;
