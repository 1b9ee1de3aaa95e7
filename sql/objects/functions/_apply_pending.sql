/* pending events, per workspace and integration: only that integration's messages */

CREATE OR REPLACE FUNCTION broadcast._apply_pending(p_workspace_id text, p_since timestamp with time zone) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	w record;
	evs broadcast.delivery_event[];
	total bigint := 0;
BEGIN
	FOR w IN
		SELECT p.workspace_id, p.integration_id
		  FROM broadcast.pending_events p
		 WHERE (p_workspace_id IS NULL OR p.workspace_id = p_workspace_id)
		   AND (p_since IS NULL OR p.received_at >= p_since)
		   AND EXISTS (SELECT 1 FROM broadcast.message_history h
						WHERE h.workspace_id = p.workspace_id AND h.integration_id = p.integration_id
						  AND (h.message_id = p.message_id
							   OR (p.message_id IS NULL AND h.email = p.email
								   AND h.provider_message_id IN (p.provider_message_id,
																 '<' || p.provider_message_id || '>'))))
		 GROUP BY p.workspace_id, p.integration_id
	LOOP
		WITH gone AS (
			DELETE FROM broadcast.pending_events p
			 WHERE p.workspace_id = w.workspace_id AND p.integration_id = w.integration_id
			   AND (p_since IS NULL OR p.received_at >= p_since)
			   AND EXISTS (SELECT 1 FROM broadcast.message_history h
							WHERE h.workspace_id = p.workspace_id AND h.integration_id = p.integration_id
							  AND (h.message_id = p.message_id
								   OR (p.message_id IS NULL AND h.email = p.email
									   AND h.provider_message_id IN (p.provider_message_id,
																	 '<' || p.provider_message_id || '>'))))
			RETURNING p.*
		)
		SELECT array_agg(ROW(g.message_id, g.provider_message_id, g.email, g.event, g.occurred_at,
							 g.bounce_type, g.detail)::broadcast.delivery_event)
		  INTO evs FROM gone g;
		IF evs IS NOT NULL THEN
			PERFORM broadcast._apply_events(w.workspace_id, w.integration_id, evs);
			total := total + cardinality(evs);
		END IF;
	END LOOP;
	RETURN total;
END
$$;

REVOKE ALL ON FUNCTION broadcast._apply_pending(p_workspace_id text, p_since timestamp with time zone) FROM PUBLIC;
