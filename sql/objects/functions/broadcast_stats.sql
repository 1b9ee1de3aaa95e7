/*
 * broadcast_stats: as in 1.2, with qualified names, and refused (42501) for
 * a workspace the caller may not use rather than answering zeros.  The check
 * is a condition without columns, so the inlined plan tests it once before
 * reading history.  The broadcast's rows are read on the history's primary
 * key, between its first and last message ids.
 */

CREATE OR REPLACE FUNCTION broadcast.broadcast_stats(workspace_id text, broadcast_id text) RETURNS TABLE(template_id text, sent bigint, failed bigint, delivered bigint, opened bigint, clicked bigint, bounced bigint, complained bigint, unsubscribed bigint, delivery_rate numeric, open_rate numeric, click_rate numeric, bounce_rate numeric, complaint_rate numeric, unsubscribe_rate numeric)
    LANGUAGE sql STABLE
    AS $_$
	SELECT s.template_id, s.sent, s.failed, s.delivered, s.opened, s.clicked, s.bounced,
		   s.complained, s.unsubscribed,
		   pg_catalog.round(s.delivered::pg_catalog.numeric OPERATOR(pg_catalog./) s.sent_or_null, 4),
		   pg_catalog.round(s.opened::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4),
		   pg_catalog.round(s.clicked::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4),
		   pg_catalog.round(s.bounced::pg_catalog.numeric OPERATOR(pg_catalog./) s.sent_or_null, 4),
		   pg_catalog.round(s.complained::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4),
		   pg_catalog.round(s.unsubscribed::pg_catalog.numeric OPERATOR(pg_catalog./) s.base_or_null, 4)
	  FROM (SELECT b.*,
				   CASE WHEN b.sent OPERATOR(pg_catalog.>) 0 THEN b.sent END AS sent_or_null,
				   CASE WHEN b.base OPERATOR(pg_catalog.>) 0 THEN b.base END AS base_or_null
			  FROM (SELECT g.*,
						   /* delivered when the broadcast's provider reports deliveries at all */
						   CASE WHEN pg_catalog.max(g.delivered) OVER () OPERATOR(pg_catalog.>) 0
								THEN g.reached ELSE g.sent END AS base
					  FROM (SELECT h.template_id,
								   pg_catalog.count(*) FILTER (WHERE h.status OPERATOR(pg_catalog.=) 'sent') AS sent,
								   pg_catalog.count(*) FILTER (WHERE h.status OPERATOR(pg_catalog.=) 'failed') AS failed,
								   pg_catalog.count(h.delivered_at) AS delivered,
								   /* an open or a click proves a delivery the provider may not have reported */
								   pg_catalog.count(*) FILTER (WHERE h.delivered_at IS NOT NULL OR h.opened_at IS NOT NULL
															 OR h.clicked_at IS NOT NULL) AS reached,
								   pg_catalog.count(h.opened_at) AS opened,
								   pg_catalog.count(h.clicked_at) AS clicked,
								   pg_catalog.count(h.bounced_at) AS bounced,
								   pg_catalog.count(h.complained_at) AS complained,
								   pg_catalog.count(h.unsubscribed_at) AS unsubscribed
							  FROM broadcast.broadcasts r
							  JOIN broadcast.message_history h
								ON h.workspace_id OPERATOR(pg_catalog.=) r.workspace_id
							   AND h.message_id OPERATOR(pg_catalog.>=) r.first_message_id
							   AND h.message_id OPERATOR(pg_catalog.<=) r.last_message_id
							 WHERE r.workspace_id OPERATOR(pg_catalog.=) $1
							   AND r.broadcast_id OPERATOR(pg_catalog.=) $2
							   AND h.broadcast_id OPERATOR(pg_catalog.=) $2
							   AND broadcast._authorized($1)
							 GROUP BY GROUPING SETS ((h.template_id), ())) g) b) s
	 ORDER BY s.template_id NULLS FIRST
$_$;

COMMENT ON FUNCTION broadcast.broadcast_stats(workspace_id text, broadcast_id text) IS 'Totals (template_id NULL) and per-variation counts and rates of a broadcast''s messages';
