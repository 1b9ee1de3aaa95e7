/* a sending window, checked and normalised; NULL stays NULL */
CREATE OR REPLACE FUNCTION broadcast._check_send_window(w jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	days text[];
	v_from text;
	v_to text;
	v_zone text;
BEGIN
	IF w IS NULL THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(w) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'send_window must be a JSON object',
			HINT = 'Pass {"from": "08:00", "to": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"], "zone": "recipient"}.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(w) k
	 WHERE k NOT IN ('from', 'to', 'days', 'zone') ORDER BY 1 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown send_window setting %s', quote_literal(bad)),
			HINT = 'The settings are from, to, days and zone.';
	END IF;
	v_from := w->>'from';
	v_to := w->>'to';
	IF jsonb_typeof(w->'from') IS DISTINCT FROM 'string' OR v_from !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "from" must be a time HH:MM from 00:00 to 23:59, got %s', coalesce(w->>'from', 'NULL'));
	END IF;
	IF jsonb_typeof(w->'to') IS DISTINCT FROM 'string'
	   OR (v_to !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' AND v_to <> '24:00') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "to" must be a time HH:MM from 00:01 to 24:00, got %s', coalesce(w->>'to', 'NULL'));
	END IF;
	IF v_from::time >= v_to::time THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "from" (%s) must come before "to" (%s)', v_from, v_to),
			HINT = 'A window lies within one day; for a window across midnight, use "from": "00:00" and "to": "24:00" on the days it covers, or two broadcasts.';
	END IF;
	IF w ? 'days' THEN
		IF jsonb_typeof(w->'days') <> 'array' OR jsonb_array_length(w->'days') = 0
		   OR EXISTS (SELECT 1 FROM jsonb_array_elements(w->'days') e
					   WHERE jsonb_typeof(e) <> 'string'
						  OR e #>> '{}' NOT IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('send_window "days" must be a non-empty array of mon, tue, wed, thu, fri, sat, sun, got %s',
								 w->'days'),
				HINT = 'Leave "days" out for every day of the week.';
		END IF;
		days := ARRAY(SELECT d FROM unnest(ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']) WITH ORDINALITY AS x(d, n)
					   WHERE w->'days' ? d ORDER BY n);
	ELSE
		days := ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
	END IF;
	v_zone := coalesce(w->>'zone', 'workspace');
	IF (w ? 'zone' AND jsonb_typeof(w->'zone') <> 'string') OR v_zone NOT IN ('workspace', 'recipient') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('send_window "zone" must be "workspace" or "recipient", got %s', w->'zone'),
			HINT = '"recipient" uses each contact''s time zone, and the workspace''s for contacts without one.';
	END IF;
	RETURN jsonb_build_object('from', v_from, 'to', v_to, 'days', to_jsonb(days), 'zone', v_zone);
END
$$;
