-- broadcast_stats: totals and per-variation counts, served by the 1.1 indexes.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;

SELECT broadcast.create_workspace('stats', 'Stats');
-- 60 broadcasts of 500 messages, two variations each, with some events
INSERT INTO broadcast.message_history
	(workspace_id, message_id, broadcast_id, template_id, template_version, variation, email, status,
	 sent_at, failed_at, error, delivered_at, opened_at, clicked_at, bounced_at, bounce_type,
	 complained_at, unsubscribed_at)
SELECT 'stats', gen_random_uuid(), 'b' || b, CASE WHEN i % 2 = 0 THEN 'red' ELSE 'blue' END, 1, i % 2,
	   'u' || i || '@example.com',
	   CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END,
	   CASE WHEN i % 50 <> 0 THEN now() END,
	   CASE WHEN i % 50 = 0 THEN now() END,
	   CASE WHEN i % 50 = 0 THEN '550 mailbox unavailable' END,
	   CASE WHEN i % 50 <> 0 AND i % 25 <> 1 THEN now() END,
	   CASE WHEN (i % 2 = 0 AND i % 4 = 0) OR (i % 2 = 1 AND i % 10 = 1) THEN now() END,
	   CASE WHEN i % 20 = 0 THEN now() END,
	   CASE WHEN i % 25 = 1 THEN now() END,
	   CASE WHEN i % 25 = 1 THEN 'hard' END,
	   CASE WHEN i = 7 THEN now() END,
	   CASE WHEN i % 100 = 3 THEN now() END
  FROM generate_series(1, 60) b, generate_series(1, 500) i;
ANALYZE broadcast.message_history;

SELECT * FROM broadcast.broadcast_stats('stats', 'b7');
SELECT * FROM broadcast.broadcast_stats('stats', 'no-such-broadcast');

-- the call is inlined, so EXPLAIN shows the plan the function really runs:
-- it must read the broadcast through a 1.1 index, never a sequential scan
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; plan text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP plan := plan || r || E'\n'; END LOOP;
	RETURN plan;
END
$$;
SELECT p ~ 'Index (Only )?Scan using message_history(_default|_p[0-9]{6})?_broadcast(_template)?_idx|Bitmap Index Scan on message_history(_default|_p[0-9]{6})?_broadcast(_template)?_idx' AS uses_stats_index,
	   p !~ 'Seq Scan' AS no_seq_scan,
	   p !~ 'Function Scan' AS inlined
  FROM pg_temp.plan_of($$SELECT * FROM broadcast.broadcast_stats('stats', 'b7')$$) p;
SELECT broadcast.drop_workspace('stats');
