/* the history trigger: an event parked for one integration never applies to another's message */

CREATE OR REPLACE FUNCTION broadcast._history_apply_pending() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	w record;
	evs broadcast.delivery_event[];
	locked boolean;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.pending_events) THEN
		RETURN NULL;
	END IF;
	FOR w IN
		SELECT p.workspace_id, p.integration_id,
			   bool_or(p.event IN ('bounced', 'complained', 'unsubscribed')) AS suppressing
		  FROM new_rows n
		  JOIN broadcast.pending_events p
			ON p.workspace_id = n.workspace_id AND p.integration_id = n.integration_id
		   AND (p.message_id = n.message_id
				OR (p.message_id IS NULL AND p.email = n.email
					AND n.provider_message_id IN (p.provider_message_id, '<' || p.provider_message_id || '>')))
		 GROUP BY p.workspace_id, p.integration_id
	LOOP
		locked := false;
		IF w.suppressing THEN
			locked := broadcast._try_lock_audience(w.workspace_id, true);
		END IF;
		WITH gone AS (
			DELETE FROM broadcast.pending_events p
			 USING new_rows n
			 WHERE p.workspace_id = w.workspace_id AND n.workspace_id = w.workspace_id
			   AND n.integration_id = p.integration_id
			   AND (p.message_id = n.message_id
					OR (p.message_id IS NULL AND p.email = n.email
						AND n.provider_message_id IN (p.provider_message_id,
													  '<' || p.provider_message_id || '>')))
			   AND p.integration_id = w.integration_id
			   AND (locked OR p.event NOT IN ('bounced', 'complained', 'unsubscribed'))
			RETURNING p.*
		)
		SELECT array_agg(ROW(g.message_id, g.provider_message_id, g.email, g.event, g.occurred_at,
							 g.bounce_type, g.detail)::broadcast.delivery_event)
		  INTO evs FROM gone g;
		IF evs IS NOT NULL THEN
			PERFORM broadcast._apply_events(w.workspace_id, w.integration_id, evs);
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
