/* schedule_broadcast at a local time: the workspace check comes first */

CREATE OR REPLACE FUNCTION broadcast.schedule_broadcast(workspace_id text, broadcast_id text, send_at timestamp with time zone DEFAULT now()) RETURNS timestamp with time zone
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
	SELECT broadcast._schedule(workspace_id, broadcast_id, send_at, NULL, NULL, false)
$$;

CREATE OR REPLACE FUNCTION broadcast.schedule_broadcast(workspace_id text, broadcast_id text, local_time timestamp without time zone, timezone text, recipient_timezone boolean DEFAULT false) RETURNS timestamp with time zone
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._authorize(schedule_broadcast.workspace_id);
	IF local_time IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'local_time must not be NULL';
	END IF;
	PERFORM broadcast._check_timezone(timezone);
	RETURN broadcast._schedule(workspace_id, broadcast_id, local_time AT TIME ZONE timezone,
							   local_time, timezone, coalesce(recipient_timezone, false));
END
$$;
