/* ------------------------------------------------------------------------
 * Broadcasts
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast._get_broadcast(p_workspace_id text, p_broadcast_id text, p_lock boolean DEFAULT true) RETURNS broadcast.broadcasts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._check_id('broadcast', p_broadcast_id);
	IF p_lock THEN
		SELECT * INTO b FROM broadcast.broadcasts x
		 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id
		   FOR UPDATE;
	ELSE
		SELECT * INTO b FROM broadcast.broadcasts x
		 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('broadcast %s does not exist in workspace %s',
							 quote_literal(p_broadcast_id), quote_literal(p_workspace_id));
	END IF;
	RETURN b;
END
$$;
