/*
 * Applies normalised events to one workspace, set-based:
 *	1. match them to history rows (our id, else the provider's id + address:
 *	   a batch API shares one id between recipients, and the lookup runs on
 *	   the contact's index, there being no index of provider ids)
 *	   and park the unmatched ones that carry our id in pending_events
 *	2. one UPDATE of message_history: the earliest time per event column
 *	3. soft bounces logged per message, then one statement suppressing
 *	   hard bounces, complainers and addresses over the soft threshold
 *	   (suppressions, list member status, pending queue rows)
 *	4. one statement for recipients' unsubscribes reported by the provider
 * Runs as the caller's function owner (callers are SECURITY DEFINER).
 */

CREATE OR REPLACE FUNCTION broadcast._apply_events(p_workspace_id text, p_integration_id text, evs broadcast.delivery_event[], OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	m broadcast._matched_event[];
	waiting broadcast.delivery_event[];
	cap integer;
	parked integer;
	room integer;
	dropped integer := 0;
BEGIN
	received := coalesce(cardinality(evs), 0);
	changed := 0;
	suppressed := 0;

	/* 1. match */
	WITH e AS (
		/* input order: what does not fit in the parking is the latest (below) */
		SELECT x.* FROM unnest(evs) WITH ORDINALITY x WHERE x.event <> 'ignored'
	), r AS (
		/*
		 * Only messages sent through this integration: an event arriving
		 * through another one (an unsigned SMTP integration, say) is unknown
		 * here, and is not parked either.
		 */
		SELECT e.*, coalesce(h1.message_id, h2.message_id) AS hid,
			   coalesce(h1.email, h2.email) AS hemail, coalesce(h1.list_id, h2.list_id) AS hlist,
			   h0.message_id IS NOT NULL AS known
		  FROM e
		  LEFT JOIN broadcast.message_history h0
				 ON h0.workspace_id = p_workspace_id AND h0.message_id = e.message_id
		  LEFT JOIN broadcast.message_history h1
				 ON h1.workspace_id = p_workspace_id AND h1.message_id = e.message_id
				AND h1.integration_id = p_integration_id
		  LEFT JOIN LATERAL (
				SELECT h.message_id, h.email, h.list_id FROM broadcast.message_history h
				 WHERE e.message_id IS NULL AND e.provider_message_id IS NOT NULL
				   AND h.workspace_id = p_workspace_id AND h.email = e.email
				   AND h.provider_message_id IN (e.provider_message_id, '<' || e.provider_message_id || '>')
				   AND h.integration_id = p_integration_id
				 LIMIT 1) h2 ON true
	), w AS (
		/*
		 * Unmatched: ours to wait for when it carries our id, or when it
		 * carries the provider's id and the address has a queue row in a
		 * sender's hands (sent, history row not committed yet)
		 */
		SELECT r.*,
			   r.hid IS NULL AND NOT r.known AND (r.message_id IS NOT NULL OR (
				   r.provider_message_id IS NOT NULL AND r.email IS NOT NULL
				   AND EXISTS (SELECT 1 FROM broadcast.broadcasts b
								 JOIN broadcast.email_queue q
								   ON q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
								WHERE b.workspace_id = p_workspace_id
								  AND b.status IN ('processing', 'testing', 'test_completed', 'winner_selected', 'paused')
								  AND q.email = r.email AND q.integration_id = p_integration_id
								  AND (q.lease_until IS NOT NULL OR q.status = 'sending')))) AS wait
		  FROM r
	)
	SELECT coalesce(array_agg(ROW(w.hid, w.hemail, w.hlist, w.event, w.occurred_at, w.bounce_type,
								  w.detail)::broadcast._matched_event) FILTER (WHERE w.hid IS NOT NULL),
					'{}'),
		   coalesce(array_agg(ROW(w.message_id, CASE WHEN w.message_id IS NULL THEN w.provider_message_id END,
								  CASE WHEN w.message_id IS NULL THEN w.email END, w.event, w.occurred_at,
								  w.bounce_type, w.detail)::broadcast.delivery_event ORDER BY w.ordinality)
					 FILTER (WHERE w.wait),
					'{}'),
		   count(*) FILTER (WHERE w.hid IS NULL AND NOT w.wait)
	  INTO m, waiting, unknown
	  FROM w;
	pending := cardinality(waiting);

	/*
	 * Park, within the workspace's bound (broadcast_engine.pending_events_limit):
	 * expired rows go first, events already parked (replays) take no room,
	 * and what does not fit is dropped, counted and reported.  The
	 * workspace's audience lock (35_audience_lock.sql: a row lock no other
	 * role can take) makes concurrent calls of one workspace count in turn.
	 */
	IF pending > 0 THEN
		PERFORM broadcast._lock_audience(p_workspace_id);
		DELETE FROM broadcast.pending_events p
		 WHERE p.workspace_id = p_workspace_id
		   AND p.received_at < now() - make_interval(secs => broadcast._setting_int(
				'broadcast_engine.pending_events_max_age', 86400, 60, 30 * 86400));
		cap := broadcast._setting_int('broadcast_engine.pending_events_limit', 10000, 0, 10000000);
		SELECT count(*) INTO parked
		  FROM (SELECT 1 FROM broadcast.pending_events p WHERE p.workspace_id = p_workspace_id LIMIT cap) x;
		room := greatest(cap - parked, 0);
		WITH fresh AS (
			SELECT x.* FROM unnest(waiting) WITH ORDINALITY
					 AS x(message_id, provider_message_id, email, event, occurred_at, bounce_type, detail, ord)
			 /* the unique key's columns as one hashable value: an anti-join, not a probe per event */
			 WHERE concat(coalesce(x.message_id::text, '-'), ' ', coalesce(x.provider_message_id, '-'), ' ',
						  coalesce(x.email, '-'), ' ', x.event, ' ', x.occurred_at)
				   NOT IN (SELECT concat(coalesce(p.message_id::text, '-'), ' ', coalesce(p.provider_message_id, '-'),
										 ' ', coalesce(p.email, '-'), ' ', p.event, ' ', p.occurred_at)
							 FROM broadcast.pending_events p WHERE p.workspace_id = p_workspace_id)
		), kept AS (
			SELECT f.* FROM fresh f ORDER BY f.ord LIMIT room
		), ins AS (
			INSERT INTO broadcast.pending_events AS p
				(workspace_id, message_id, provider_message_id, email, event, occurred_at, bounce_type,
				 detail, integration_id)
			SELECT p_workspace_id, k.message_id, k.provider_message_id, k.email, k.event, k.occurred_at,
				   k.bounce_type, k.detail, p_integration_id
			  FROM kept k
			ON CONFLICT DO NOTHING
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM fresh) - (SELECT count(*) FROM kept) INTO dropped;
		IF dropped > 0 THEN
			INSERT INTO broadcast.pending_events_dropped AS d (workspace_id, dropped, last_dropped_at)
			VALUES (p_workspace_id, dropped, now())
			ON CONFLICT (workspace_id) DO UPDATE SET dropped = d.dropped + EXCLUDED.dropped,
				last_dropped_at = EXCLUDED.last_dropped_at;
			RAISE WARNING USING
				MESSAGE = format('%s delivery events for workspace %s were dropped: too many are waiting for their messages',
								 dropped, quote_literal(p_workspace_id)),
				DETAIL = format('At most %s events may wait per workspace (broadcast_engine.pending_events_limit).', cap),
				HINT = 'Events for message ids this server never sent are the usual cause; see broadcast.pending_events_dropped.';
			pending := pending - dropped;
			unknown := unknown + dropped;
		END IF;
	END IF;
	applied := cardinality(m);
	SELECT count(*) FILTER (WHERE x.event = 'ignored') INTO ignored FROM unnest(evs) x;
	IF applied = 0 THEN
		RETURN;
	END IF;

	/*
	 * Events that may suppress or unsubscribe: the audience lock before any
	 * further write, so that steps 3 and 4 drop the rows of every committed
	 * chunk and later chunks see the suppression (see _lock_audience).
	 */
	IF EXISTS (SELECT 1 FROM unnest(m) x WHERE x.event IN ('bounced', 'complained', 'unsubscribed')) THEN
		PERFORM broadcast._lock_audience(p_workspace_id);
	END IF;

	/* 2. history: the earliest time of each event wins; a hard bounce beats a soft one */
	WITH a AS (
		SELECT x.message_id,
			   min(x.occurred_at) FILTER (WHERE x.event = 'delivered') AS delivered,
			   min(x.occurred_at) FILTER (WHERE x.event = 'opened') AS opened,
			   min(x.occurred_at) FILTER (WHERE x.event = 'clicked') AS clicked,
			   min(x.occurred_at) FILTER (WHERE x.event = 'bounced') AS bounced,
			   coalesce(bool_or(x.bounce_type = 'hard') FILTER (WHERE x.event = 'bounced'), false) AS hard,
			   min(x.occurred_at) FILTER (WHERE x.event = 'complained') AS complained,
			   min(x.occurred_at) FILTER (WHERE x.event = 'unsubscribed') AS unsubscribed
		  FROM unnest(m) x
		 GROUP BY x.message_id
	)
	UPDATE broadcast.message_history h
	   SET delivered_at = least(h.delivered_at, a.delivered),
		   opened_at = least(h.opened_at, a.opened),
		   clicked_at = least(h.clicked_at, a.clicked),
		   bounced_at = least(h.bounced_at, a.bounced),
		   bounce_type = CASE WHEN a.hard OR h.bounce_type = 'hard' THEN 'hard'
							  WHEN a.bounced IS NOT NULL THEN 'soft'
							  ELSE h.bounce_type END,
		   complained_at = least(h.complained_at, a.complained),
		   unsubscribed_at = least(h.unsubscribed_at, a.unsubscribed)
	  FROM a
	 WHERE h.workspace_id = p_workspace_id AND h.message_id = a.message_id
	   AND (least(h.delivered_at, a.delivered) IS DISTINCT FROM h.delivered_at
			OR least(h.opened_at, a.opened) IS DISTINCT FROM h.opened_at
			OR least(h.clicked_at, a.clicked) IS DISTINCT FROM h.clicked_at
			OR least(h.bounced_at, a.bounced) IS DISTINCT FROM h.bounced_at
			OR (a.hard AND h.bounce_type IS DISTINCT FROM 'hard')
			OR (a.bounced IS NOT NULL AND h.bounce_type IS NULL)
			OR least(h.complained_at, a.complained) IS DISTINCT FROM h.complained_at
			OR least(h.unsubscribed_at, a.unsubscribed) IS DISTINCT FROM h.unsubscribed_at);
	GET DIAGNOSTICS changed = ROW_COUNT;

	/* 3. suppression */
	IF EXISTS (SELECT 1 FROM unnest(m) x WHERE x.event IN ('bounced', 'complained')) THEN
		INSERT INTO broadcast.soft_bounces (workspace_id, email, message_id, bounced_at, detail)
		SELECT DISTINCT ON (x.email, x.message_id) p_workspace_id, x.email, x.message_id,
			   x.occurred_at, left(x.detail, 500)
		  FROM unnest(m) x
		 WHERE x.event = 'bounced' AND x.bounce_type = 'soft'
		 ORDER BY x.email, x.message_id, x.occurred_at
		ON CONFLICT DO NOTHING;

		WITH t AS (
			SELECT DISTINCT ON (c.email) c.email, c.reason, c.detail
			  FROM (SELECT x.email, CASE x.event WHEN 'complained' THEN 'complaint' ELSE 'hard_bounce' END AS reason,
						   left(x.detail, 500) AS detail, CASE x.event WHEN 'complained' THEN 1 ELSE 2 END AS rank
					  FROM unnest(m) x
					 WHERE x.event = 'complained' OR (x.event = 'bounced' AND x.bounce_type = 'hard')
					UNION ALL
					SELECT s.email, 'soft_bounce', format('%s soft bounces', count(*)), 3
					  FROM broadcast.soft_bounces s
					 WHERE s.workspace_id = p_workspace_id
					   AND s.email IN (SELECT x.email FROM unnest(m) x
										WHERE x.event = 'bounced' AND x.bounce_type = 'soft')
					 GROUP BY s.email
					HAVING count(*) >= broadcast._soft_bounce_threshold(p_workspace_id)) c
			 ORDER BY c.email, c.rank
		), sup AS (
			INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
			SELECT p_workspace_id, t.email, t.reason, t.detail FROM t
			ON CONFLICT DO NOTHING
			RETURNING 1
		), members AS (
			UPDATE broadcast.list_members lm
			   SET status = CASE t.reason WHEN 'complaint' THEN 'complained' ELSE 'bounced' END,
				   updated_at = now()
			  FROM t
			 WHERE lm.workspace_id = p_workspace_id AND lm.email = t.email
			   AND lm.status IN ('active', 'pending')
			RETURNING 1
		), queue AS (
			/* rows a sender holds in flight finish on their own */
			DELETE FROM broadcast.email_queue q
			 USING t, broadcast.broadcasts b
			 WHERE b.workspace_id = p_workspace_id
			   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
			   AND q.workspace_id = p_workspace_id AND q.broadcast_id = b.broadcast_id AND q.email = t.email
			   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now())
			RETURNING 1
		)
		/* every data-modifying CTE runs, whether or not it is read */
		SELECT count(*) INTO suppressed FROM sup;
	END IF;

	/* 4. the recipient unsubscribed through the provider: from the message's list, or everywhere */
	IF EXISTS (SELECT 1 FROM unnest(m) x WHERE x.event = 'unsubscribed') THEN
		WITH u AS (
			SELECT DISTINCT x.email, x.list_id FROM unnest(m) x WHERE x.event = 'unsubscribed'
		), members AS (
			UPDATE broadcast.list_members lm SET status = 'unsubscribed', updated_at = now()
			  FROM u
			 WHERE lm.workspace_id = p_workspace_id AND lm.email = u.email
			   AND (u.list_id IS NULL OR lm.list_id = u.list_id)
			   AND lm.status IN ('active', 'pending')
			RETURNING 1
		), sup AS (
			INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
			SELECT p_workspace_id, u.email, 'unsubscribe', 'reported by the provider'
			  FROM u WHERE u.list_id IS NULL
			ON CONFLICT DO NOTHING
			RETURNING 1
		), queue AS (
			DELETE FROM broadcast.email_queue q
			 USING u, broadcast.broadcasts b
			 WHERE b.workspace_id = p_workspace_id
			   AND b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused')
			   AND q.workspace_id = p_workspace_id AND q.broadcast_id = b.broadcast_id AND q.email = u.email
			   AND (u.list_id IS NULL OR q.list_id = u.list_id)
			   AND q.status = 'pending' AND (q.lease_until IS NULL OR q.lease_until <= now())
			RETURNING 1
		)
		SELECT suppressed + count(*) INTO suppressed FROM sup;
	END IF;
END
$$;

REVOKE ALL ON FUNCTION broadcast._apply_events(p_workspace_id text, p_integration_id text, evs broadcast.delivery_event[], OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer, OUT unknown integer, OUT ignored integer, OUT suppressed integer) FROM PUBLIC;
