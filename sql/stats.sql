-- broadcast_stats: totals and per-variation counts, read on the history's
-- primary key in each broadcast's message id range.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;

SELECT broadcast.create_workspace('stats', 'Stats');
SELECT broadcast.create_integration('stats', 'i', 'smtp', '{"host": "localhost"}');
INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status)
SELECT 'stats', 'b' || b, 'B', '{l}', 'i', 'red', 'completed' FROM generate_series(1, 60) b;
-- a UUIDv7 of a moment (ms since 1970): broadcast b's messages are queued in its own second
CREATE FUNCTION pg_temp.v7(ms bigint, n bigint) RETURNS uuid LANGUAGE sql
AS $$ SELECT (lpad(to_hex(ms), 12, '0') || '7000' || '8000' || lpad(to_hex(n), 12, '0'))::uuid $$;
-- 60 broadcasts of 500 messages, two variations each, with some events
INSERT INTO broadcast.message_history
	(workspace_id, message_id, broadcast_id, template_id, template_version, variation, email, status,
	 sent_at, failed_at, error, delivered_at, opened_at, clicked_at, bounced_at, bounce_type,
	 complained_at, unsubscribed_at)
SELECT 'stats', pg_temp.v7(1700000000000 + b * 1000 + i, b * 1000 + i), 'b' || b, CASE WHEN i % 2 = 0 THEN 'red' ELSE 'blue' END, 1, i % 2,
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
-- rows not written by a sender: the broadcasts' message id ranges are set on request
SELECT broadcast.refresh_broadcast_ranges('stats') AS refreshed;
SELECT broadcast.refresh_broadcast_ranges('stats') AS refreshed_again;

SELECT * FROM broadcast.broadcast_stats('stats', 'b7');
SELECT * FROM broadcast.broadcast_stats('stats', 'no-such-broadcast');
-- each broadcast's range is exactly its rows' ids
SELECT count(*) AS broadcasts, count(*) FILTER (WHERE b.first_message_id = x.lo AND b.last_message_id = x.hi) AS exact
  FROM broadcast.broadcasts b
  JOIN (SELECT h.broadcast_id, min(h.message_id::text COLLATE "C")::uuid AS lo,
			   max(h.message_id::text COLLATE "C")::uuid AS hi
		  FROM broadcast.message_history h WHERE h.workspace_id = 'stats' GROUP BY 1) x
	ON x.broadcast_id = b.broadcast_id
 WHERE b.workspace_id = 'stats';
-- rows imported later, and earlier, than the range: counted once it is widened
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, email, status, sent_at)
VALUES ('stats', pg_temp.v7(1800000000000, 1), 'b7', 'red', 'late@example.com', 'sent', now()),
	   ('stats', pg_temp.v7(1600000000000, 1), 'b7', 'blue', 'early@example.com', 'sent', now());
SELECT template_id, sent FROM broadcast.broadcast_stats('stats', 'b7');
SELECT broadcast.refresh_broadcast_ranges('stats') AS refreshed;
SELECT template_id, sent FROM broadcast.broadcast_stats('stats', 'b7');
-- it only widens: the rows leaving leave the range as it is
DELETE FROM broadcast.message_history WHERE workspace_id = 'stats' AND email IN ('late@example.com', 'early@example.com');
SELECT broadcast.refresh_broadcast_ranges('stats') AS refreshed,
	   (SELECT last_message_id = pg_temp.v7(1800000000000, 1) FROM broadcast.broadcasts
		 WHERE workspace_id = 'stats' AND broadcast_id = 'b7') AS still_wide;
-- only an administrator may, and only for a workspace that exists
SELECT broadcast.refresh_broadcast_ranges('no-such-workspace');
SET ROLE broadcast_user;
SELECT broadcast.refresh_broadcast_ranges('stats');
RESET ROLE;
-- a broadcast that has sent nothing reads no history
SELECT template_id, sent FROM broadcast.broadcast_stats('stats', 'b61');
INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status)
VALUES ('stats', 'b61', 'B', '{l}', 'i', 'red', 'processing');
SELECT template_id, sent FROM broadcast.broadcast_stats('stats', 'b61');

-- the call is inlined, so EXPLAIN shows the plan the function really runs:
-- it must read the broadcast through the primary key, never a sequential scan
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; plan text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP plan := plan || r || E'\n'; END LOOP;
	RETURN plan;
END
$$;
SELECT p ~ 'Index Scan using message_history(_default|_p[0-9]{6})?_pkey|Bitmap Index Scan on message_history(_default|_p[0-9]{6})?_pkey' AS uses_primary_key,
	   p !~ 'Seq Scan' AS no_seq_scan,
	   p !~ 'Function Scan' AS inlined
  FROM pg_temp.plan_of($$SELECT * FROM broadcast.broadcast_stats('stats', 'b7')$$) p;
-- variation_stats too: each variation on the primary key, in the broadcast's range
SELECT broadcast.create_template('stats', 'red', 'Red', '<p>r</p>', from_email => 'a@stats.test'),
	   broadcast.create_template('stats', 'blue', 'Blue', '<p>b</p>', from_email => 'a@stats.test');
INSERT INTO broadcast.broadcast_variations (workspace_id, broadcast_id, variation, template_id, version)
VALUES ('stats', 'b7', 0, 'red', 1), ('stats', 'b7', 1, 'blue', 1);
SELECT variation, template_id, sent, failed, opened FROM broadcast.variation_stats
 WHERE workspace_id = 'stats' AND broadcast_id = 'b7' ORDER BY variation;
SELECT p ~ 'Index Scan using message_history(_default|_p[0-9]{6})?_pkey' AS uses_primary_key,
	   p !~ 'Seq Scan on message_history' AS no_seq_scan
  FROM pg_temp.plan_of($$SELECT * FROM broadcast.variation_stats WHERE workspace_id = 'stats' AND broadcast_id = 'b7'$$) p;
SELECT broadcast.drop_workspace('stats');
