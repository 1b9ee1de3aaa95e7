CREATE OR REPLACE FUNCTION broadcast.select_winner(workspace_id text, broadcast_id text, template_id text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize_caller(select_winner.workspace_id);
	b := broadcast._get_broadcast(select_winner.workspace_id, select_winner.broadcast_id);
	IF b.variations IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('broadcast %s is not an A/B test', quote_literal(b.broadcast_id));
	END IF;
	IF select_winner.template_id IS NULL OR NOT (select_winner.template_id = ANY (b.variations)) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('template %s is not a variation of broadcast %s',
							 coalesce(quote_literal(select_winner.template_id), 'NULL'), quote_literal(b.broadcast_id)),
			DETAIL = format('The variations are: %s.', array_to_string(b.variations, ', '));
	END IF;
	IF b.status NOT IN ('testing', 'test_completed') THEN
		PERFORM broadcast._state_error(b, 'select a winner for', 'testing or test_completed');
	END IF;
	UPDATE broadcast.broadcasts x SET winner_template_id = select_winner.template_id,
		   status = 'winner_selected', winner_selected_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET run_at = now(), updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id AND t.status = 'pending';
	PERFORM broadcast._wake_scheduler();
	RETURN select_winner.template_id;
END
$$;
