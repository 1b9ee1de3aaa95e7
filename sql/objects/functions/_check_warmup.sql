/* the warm-up schedule, checked and normalised; NULL stays NULL */
CREATE OR REPLACE FUNCTION broadcast._check_warmup(w jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	v_start numeric;
	v_factor numeric;
	v_ceiling numeric;
	v_on date;
BEGIN
	IF w IS NULL THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(w) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'warmup must be a JSON object',
			HINT = 'Pass {"start": 500, "factor": 2, "ceiling": 100000, "started_on": "2026-12-01"}.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(w) k
	 WHERE k NOT IN ('start', 'factor', 'ceiling', 'started_on') ORDER BY 1 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown warmup setting %s', quote_literal(bad)),
			HINT = 'The settings are start, factor, ceiling and started_on.';
	END IF;
	IF jsonb_typeof(w->'start') IS DISTINCT FROM 'number'
	   OR jsonb_typeof(w->'ceiling') IS DISTINCT FROM 'number'
	   OR jsonb_typeof(coalesce(w->'factor', '2')) <> 'number'
	   OR jsonb_typeof(w->'started_on') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'warmup needs numbers start and ceiling, a date started_on, and optionally a number factor',
			HINT = 'Pass {"start": 500, "factor": 2, "ceiling": 100000, "started_on": "2026-12-01"}.';
	END IF;
	v_start := (w->>'start')::numeric;
	v_factor := coalesce((w->>'factor')::numeric, 2);
	v_ceiling := (w->>'ceiling')::numeric;
	IF v_start <> trunc(v_start) OR v_start NOT BETWEEN 1 AND 10000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup start must be a whole number between 1 and 10000000, got %s', w->>'start');
	END IF;
	IF v_factor NOT BETWEEN 1 AND 10 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup factor must be between 1 and 10, got %s', w->>'factor');
	END IF;
	IF v_ceiling <> trunc(v_ceiling) OR v_ceiling NOT BETWEEN v_start AND 1000000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup ceiling must be a whole number between start (%s) and 1000000000, got %s',
							 v_start, w->>'ceiling');
	END IF;
	IF (w->>'started_on') ~ '^\d{4}-\d{2}-\d{2}$' THEN
		BEGIN
			v_on := (w->>'started_on')::date;
		EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
			v_on := NULL;
		END;
	END IF;
	IF v_on IS NULL OR v_on NOT BETWEEN date '2000-01-01' AND current_date + 3650 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('warmup started_on must be a date (YYYY-MM-DD) between 2000-01-01 and ten years from now, got %s',
							 w->>'started_on');
	END IF;
	RETURN jsonb_build_object('start', v_start, 'factor', v_factor, 'ceiling', v_ceiling,
							  'started_on', to_char(v_on, 'YYYY-MM-DD'));
END
$$;
