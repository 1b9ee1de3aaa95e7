/* broadcast_engine--1.0--1.1.sql: indexes that serve broadcast stats */

\echo Use "ALTER EXTENSION broadcast_engine UPDATE TO '1.1'" to load this file. \quit

/* broadcast_stats() and the dashboards read one broadcast's history */
CREATE INDEX message_history_broadcast_idx
	ON broadcast.message_history (workspace_id, broadcast_id)
	WHERE broadcast_id IS NOT NULL;

/* per-variation (A/B) counts */
CREATE INDEX message_history_broadcast_template_idx
	ON broadcast.message_history (workspace_id, broadcast_id, template_id)
	WHERE broadcast_id IS NOT NULL;
