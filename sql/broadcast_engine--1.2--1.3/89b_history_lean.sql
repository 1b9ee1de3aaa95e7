/*
 * Two fewer indexes on every message sent (issue 13).  89 built the history's
 * partitions with the indexes _history_partition_indexes gives them now:
 * the primary key and the contact's index.  What the two dropped ones served
 * is served here:
 *	- a broadcast's statistics (broadcast_stats, variation_stats,
 *	  engagement_stats, the A/B winner) read the primary key between the
 *	  broadcast's first and last message ids, which the senders' record
 *	  statement keeps with the counters it already updates (not a
 *	  trigger: docs/scale-out.md).  Broadcasts with history get theirs
 *	  here, from the rows moved in 89.
 *	- events that carry only the provider's id are found through the
 *	  recipient's address, which every provider's payload names; the
 *	  generic form now requires "email" with "provider_message_id".
 */

ALTER TABLE broadcast.broadcasts ADD COLUMN first_message_id uuid, ADD COLUMN last_message_id uuid;
COMMENT ON COLUMN broadcast.broadcasts.first_message_id IS 'Lowest message id of the broadcast''s history rows: its statistics read the history''s primary key from here';
COMMENT ON COLUMN broadcast.broadcasts.last_message_id IS 'Highest message id of the broadcast''s history rows';

/* the rows moved in 89 */
SELECT broadcast.refresh_broadcast_ranges(w.workspace_id) FROM broadcast.workspaces w;

/* variation_stats: the same view, reading each broadcast's message id range */
CREATE OR REPLACE VIEW broadcast.variation_stats WITH (security_invoker='true') AS
 SELECT x.workspace_id,
    x.broadcast_id,
    x.variation,
    x.template_id,
    x.version,
    x.winner,
    x.sent,
    x.failed,
    x.delivered,
    x.opened,
    x.clicked,
    x.bounced,
    x.complained,
    x.unsubscribed,
    round(((x.delivered)::numeric / (NULLIF(x.sent, 0))::numeric), 4) AS delivery_rate,
    round(((x.opened)::numeric / (NULLIF(x.base, 0))::numeric), 4) AS open_rate,
    round(((x.clicked)::numeric / (NULLIF(x.base, 0))::numeric), 4) AS click_rate,
    round(((x.bounced)::numeric / (NULLIF(x.sent, 0))::numeric), 4) AS bounce_rate,
    round(((x.complained)::numeric / (NULLIF(x.base, 0))::numeric), 4) AS complaint_rate,
    round(((x.unsubscribed)::numeric / (NULLIF(x.base, 0))::numeric), 4) AS unsubscribe_rate
   FROM ( SELECT v.workspace_id,
            v.broadcast_id,
            v.variation,
            v.template_id,
            v.version,
            COALESCE((b.winner_template_id = v.template_id), false) AS winner,
            s.sent,
            s.failed,
            s.delivered,
            s.reached,
            s.opened,
            s.clicked,
            s.bounced,
            s.complained,
            s.unsubscribed,
                CASE
                    WHEN (max(s.delivered) OVER (PARTITION BY v.workspace_id, v.broadcast_id) > 0) THEN s.reached
                    ELSE s.sent
                END AS base
           FROM ((broadcast.broadcast_variations v
             JOIN broadcast.broadcasts b ON (((b.workspace_id = v.workspace_id) AND (b.broadcast_id = v.broadcast_id))))
             CROSS JOIN LATERAL ( SELECT count(*) FILTER (WHERE (h.status = 'sent'::text)) AS sent,
                    count(*) FILTER (WHERE (h.status = 'failed'::text)) AS failed,
                    count(h.delivered_at) AS delivered,
                    count(*) FILTER (WHERE ((h.delivered_at IS NOT NULL) OR (h.opened_at IS NOT NULL) OR (h.clicked_at IS NOT NULL))) AS reached,
                    count(h.opened_at) AS opened,
                    count(h.clicked_at) AS clicked,
                    count(h.bounced_at) AS bounced,
                    count(h.complained_at) AS complained,
                    count(h.unsubscribed_at) AS unsubscribed
                   FROM broadcast.message_history h
                  WHERE ((h.workspace_id = v.workspace_id) AND (h.message_id >= b.first_message_id) AND (h.message_id <= b.last_message_id) AND (h.broadcast_id = v.broadcast_id) AND (h.template_id = v.template_id))) s)) x;
