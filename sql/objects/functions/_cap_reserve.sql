/*
 * For the sender, in its claim transaction: up to want messages for the
 * pair, as many as its caps have left, added to the counts at once (the
 * claim gives back what it does not use, _cap_add).  granted is want and
 * the rest NULL when the pair has no cap.  When nothing is left, reason
 * says which cap and until when.
 */
CREATE OR REPLACE FUNCTION broadcast._cap_reserve(p_workspace_id text, p_integration_id text, want integer,
	OUT granted integer, OUT reason text, OUT wait_until timestamptz,
	OUT hour_start timestamptz, OUT day_start timestamptz)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s record;
	n integer;
	h integer;
	d integer;
	left_h bigint;
	left_d bigint;
BEGIN
	granted := want;
	SELECT * INTO s FROM broadcast._cap_state(p_workspace_id, p_integration_id);
	IF NOT FOUND OR want <= 0 THEN
		RETURN;
	END IF;
	hour_start := s.hour_start;
	day_start := s.day_start;
	INSERT INTO broadcast.send_counts AS c (workspace_id, integration_id, period, starts_at)
	VALUES (p_workspace_id, p_integration_id, 'day', s.day_start),
		   (p_workspace_id, p_integration_id, 'hour', s.hour_start)
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		/* a new period: what is older than a week goes */
		DELETE FROM broadcast.send_counts c
		 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
		   AND c.starts_at < now() - interval '8 days';
	END IF;
	/* day before hour, in every transaction that takes both */
	SELECT c.sent INTO d FROM broadcast.send_counts c
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'day' AND c.starts_at = s.day_start FOR UPDATE;
	SELECT c.sent INTO h FROM broadcast.send_counts c
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND c.period = 'hour' AND c.starts_at = s.hour_start FOR UPDATE;
	left_h := CASE WHEN s.hourly_cap IS NULL THEN want ELSE greatest(s.hourly_cap - h, 0) END;
	left_d := CASE WHEN s.daily_limit IS NULL THEN want ELSE greatest(s.daily_limit - d, 0) END;
	granted := least(want, left_h, left_d);
	IF granted = 0 THEN
		IF left_d = 0 THEN
			reason := s.daily_reason;
			wait_until := s.day_end;
		ELSE
			reason := 'hourly cap';
			wait_until := s.hour_end;
		END IF;
		RETURN;
	END IF;
	UPDATE broadcast.send_counts c SET sent = c.sent + granted
	 WHERE c.workspace_id = p_workspace_id AND c.integration_id = p_integration_id
	   AND ((c.period = 'day' AND c.starts_at = s.day_start)
			OR (c.period = 'hour' AND c.starts_at = s.hour_start));
END
$$;

REVOKE ALL ON FUNCTION broadcast._cap_reserve(text, text, integer),
	broadcast._cap_add(text, text, timestamptz, timestamptz, integer) FROM PUBLIC;
