CREATE OR REPLACE FUNCTION broadcast._schedule(p_workspace_id text, p_broadcast_id text, p_send_at timestamp with time zone, p_local_time timestamp without time zone, p_timezone text, p_recipient_timezone boolean) RETURNS timestamp with time zone
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
	l text;
	task_run_at timestamptz;
BEGIN
	PERFORM broadcast._authorize_caller(p_workspace_id);
	b := broadcast._get_broadcast(p_workspace_id, p_broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled') THEN
		PERFORM broadcast._state_error(b, 'schedule', 'draft or scheduled');
	END IF;
	IF b.status = 'scheduled' AND EXISTS (
		SELECT 1 FROM broadcast.tasks t
		 WHERE t.workspace_id = p_workspace_id AND t.broadcast_id = p_broadcast_id
		   AND t.status = 'running') THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('broadcast %s is already starting', quote_literal(p_broadcast_id));
	END IF;
	IF p_send_at IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'send time must not be NULL';
	END IF;
	/* the lists or templates may have been dropped since the draft was made */
	FOREACH l IN ARRAY b.lists || b.exclude_lists LOOP
		PERFORM broadcast._require_list(p_workspace_id, l);
	END LOOP;

	IF p_recipient_timezone THEN
		/* the earliest zone on Earth reaches the local time first; expand now, send per zone */
		IF (p_local_time AT TIME ZONE 'Etc/GMT+12') < now() THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('local send time %s has already passed in every time zone', p_local_time),
				HINT = 'Choose a later time.';
		END IF;
		task_run_at := least(now(), p_local_time AT TIME ZONE 'Etc/GMT-14');
	ELSE
		IF p_send_at < now() - interval '1 minute' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('send time %s is in the past', p_send_at),
				HINT = 'Omit send_at to send now, or choose a time in the future.';
		END IF;
		task_run_at := greatest(p_send_at, now());
	END IF;

	PERFORM broadcast._pin_versions(p_workspace_id, p_broadcast_id);
	SELECT v.template_id INTO l
	  FROM broadcast.broadcast_variations v
	  JOIN broadcast.templates t USING (workspace_id, template_id, version)
	  JOIN broadcast.workspaces w USING (workspace_id)
	 WHERE v.workspace_id = p_workspace_id AND v.broadcast_id = p_broadcast_id
	   AND t.from_email IS NULL AND w.settings->>'default_from_email' IS NULL
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('template %s has no from_email', quote_literal(l)),
			HINT = 'Give the template a from_email, or set default_from_email in the workspace settings.';
	END IF;
	UPDATE broadcast.broadcasts x SET
		status = 'scheduled', send_at = p_send_at, local_send_at = p_local_time,
		send_timezone = p_timezone, recipient_timezone = coalesce(p_recipient_timezone, false),
		scheduled_at = now(), updated_at = now(), last_error = NULL
	 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id;

	UPDATE broadcast.tasks t SET run_at = task_run_at, updated_at = now()
	 WHERE t.workspace_id = p_workspace_id AND t.broadcast_id = p_broadcast_id AND t.status = 'pending';
	IF NOT FOUND THEN
		INSERT INTO broadcast.tasks (workspace_id, broadcast_id, run_at)
		VALUES (p_workspace_id, p_broadcast_id, task_run_at);
	END IF;
	PERFORM broadcast._wake_scheduler();
	RETURN p_send_at;
END
$$;
