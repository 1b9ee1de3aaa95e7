-- message_history partitioned by month of its UUIDv7 message_id (1.3):
-- maintain_history() makes months ahead, moves rows out of DEFAULT, drops
-- whole months older than the longest retention, trims shorter per-workspace
-- retention row by row; the triggers on the root still fire.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never
\set VERBOSITY default

-- a UUIDv7 made at time t (what broadcast._uuid_v7() makes at now())
CREATE FUNCTION pg_temp.v7(t timestamptz, salt text) RETURNS uuid LANGUAGE sql AS $$
	SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7'
			|| substr(md5(salt), 1, 3) || '8' || substr(md5(salt), 4, 15))::uuid
$$;
-- a month relative to this one (UTC)
CREATE FUNCTION pg_temp.month_at(k int) RETURNS timestamptz LANGUAGE sql AS $$
	SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k) + interval '2 days')
		   AT TIME ZONE 'UTC'
$$;
-- the partitions, as months relative to this one, with their rows
CREATE FUNCTION pg_temp.parts() RETURNS TABLE (part text, rows bigint) LANGUAGE sql AS $$
	SELECT CASE WHEN c.relname = 'message_history_default' THEN 'default'
				ELSE 'month ' || ((extract(year FROM m) * 12 + extract(month FROM m))
								  - (extract(year FROM n) * 12 + extract(month FROM n)))::int
		   END,
		   (SELECT count(*) FROM broadcast.message_history h WHERE h.tableoid = c.oid)
	  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
		   LATERAL (SELECT to_date(nullif(substr(c.relname, 18), 'ult'), 'YYYYMM') AS m,
						   now() AT TIME ZONE 'UTC' AS n) x
	 WHERE i.inhparent = 'broadcast.message_history'::regclass
	 ORDER BY c.relname <> 'message_history_default', c.relname
$$;
-- the plan's scans of history partitions
CREATE FUNCTION pg_temp.scans(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	out text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF line ~ 'Scan' THEN
			out := out || regexp_replace(regexp_replace(btrim(line), 'message_history_p[0-9]{6}', 'message_history_pMONTH', 'g'),
										 '^-> *', '') || E'\n';
		END IF;
	END LOOP;
	RETURN out;
END
$$;

-- the month bounds
SELECT broadcast._uuid7_floor('2025-03-01 00:00:00+00') AS march_2025,
	   broadcast._uuid7_time(pg_temp.v7('2025-03-01 12:00:00+00', 'x')) AS back,
	   broadcast._uuid7_time(gen_random_uuid()) AS v4,
	   broadcast._uuid7_time(broadcast._uuid_v7()) BETWEEN now() - interval '1 minute' AND now() + interval '1 minute' AS v7_now;
SELECT broadcast._uuid7_floor('1969-12-31 23:59:59+00');
-- bounds and rights
SELECT broadcast.maintain_history(25);
SELECT broadcast.maintain_history(-1);
SELECT broadcast._history_add_partition('2025-03-02');
CREATE ROLE hist_tenant;
SELECT broadcast.create_workspace('h1', 'History one');
SELECT broadcast.create_workspace('h2', 'History two');
SELECT broadcast.grant_workspace('h1', 'hist_tenant');
SET ROLE hist_tenant;
SELECT broadcast.maintain_history();
RESET ROLE;
SELECT broadcast.update_workspace('h2', '{"history_retention": 1201}');
SELECT broadcast.update_workspace('h2', '{"history_retention": "6"}');
SELECT broadcast.update_workspace('h2', '{"history_retention": 1.5}');

-- a fresh install has only DEFAULT
SELECT * FROM pg_temp.parts();

-- rows of 14, 13 and 2 months ago, and of this month; an id that is not a UUIDv7
INSERT INTO broadcast.message_history (workspace_id, message_id, email, status, created_at)
SELECT w, pg_temp.v7(pg_temp.month_at(k) + make_interval(mins => i), w || k || i), 'r' || i || '@x.test', 'sent',
	   pg_temp.month_at(k) + make_interval(mins => i)
  FROM unnest(ARRAY['h1', 'h2']) w, unnest(ARRAY[-14, -13, -2, 0]) k, generate_series(1, 5) i;
INSERT INTO broadcast.message_history (workspace_id, message_id, email, status)
VALUES ('h1', gen_random_uuid(), 'v4@x.test', 'sent');
SELECT * FROM pg_temp.parts();

-- retention off (0, the default): every month with rows gets its partition, and the months ahead
SHOW broadcast_engine.history_retention;
SELECT * FROM broadcast.maintain_history();
SELECT * FROM pg_temp.parts();
-- idempotent
SELECT * FROM broadcast.maintain_history();
-- not extension members (pg_dump writes them with their rows); DEFAULT is
SELECT count(*) FILTER (WHERE d.objid IS NULL) AS plain, count(d.objid) AS members
  FROM pg_inherits i LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.inhrelid AND d.deptype = 'e'
 WHERE i.inhparent = 'broadcast.message_history'::regclass;
-- each partition has the primary key and the contact's index, no other; the root none
SELECT count(*) FILTER (WHERE i.indrelid = 'broadcast.message_history'::regclass) AS root,
	   count(*) / 2 AS partitions_with_two,
	   count(*) FILTER (WHERE i.indexrelid::regclass::text !~ '_(pkey|contact_idx)$') AS others
  FROM pg_index i
 WHERE i.indrelid IN (SELECT 'broadcast.message_history'::regclass UNION ALL
					  SELECT inhrelid FROM pg_inherits WHERE inhparent = 'broadcast.message_history'::regclass);
-- a lookup by id reads one partition
SELECT pg_temp.scans(format('SELECT * FROM broadcast.message_history WHERE workspace_id = %L AND message_id = %L',
							 'h1', pg_temp.v7(pg_temp.month_at(-2), 'x')));

-- the statement trigger on the root applies parked events to new rows in a partition
INSERT INTO broadcast.pending_events (workspace_id, integration_id, message_id, event, occurred_at)
VALUES ('h1', 'i1', pg_temp.v7(pg_temp.month_at(0) + interval '1 hour', 'late'), 'delivered', now());
INSERT INTO broadcast.message_history (workspace_id, integration_id, message_id, email, status)
VALUES ('h1', 'i1', pg_temp.v7(pg_temp.month_at(0) + interval '1 hour', 'late'), 'late@x.test', 'sent');
SELECT h.delivered_at IS NOT NULL AS applied, h.tableoid = 'broadcast.message_history_default'::regclass AS in_default,
	   (SELECT count(*) FROM broadcast.pending_events p WHERE p.workspace_id = 'h1') AS still_parked
  FROM broadcast.message_history h WHERE h.email = 'late@x.test';
-- and the row trigger of the root runs on the partitions' rows
INSERT INTO broadcast.tracked_events (workspace_id, message_id, event, link_index, url, machine)
SELECT 'h1', h.message_id, 'clicked', 0, 'https://x.test/?who=late', false
  FROM broadcast.message_history h WHERE h.email = 'late@x.test';
UPDATE broadcast.message_history SET email = 'forgotten@x.test' WHERE email = 'late@x.test';
SELECT url FROM broadcast.tracked_events WHERE workspace_id = 'h1';
-- a second insert of the same message conflicts in its partition
SET client_min_messages = notice;
DO $$
BEGIN
	INSERT INTO broadcast.message_history (workspace_id, message_id, email, status)
	SELECT 'h1', h.message_id, 'again@x.test', 'sent' FROM broadcast.message_history h WHERE h.email = 'forgotten@x.test';
EXCEPTION WHEN unique_violation THEN
	RAISE NOTICE 'unique_violation';
END
$$;
INSERT INTO broadcast.message_history (workspace_id, message_id, email, status)
SELECT 'h1', h.message_id, 'again@x.test', 'sent' FROM broadcast.message_history h WHERE h.email = 'forgotten@x.test'
ON CONFLICT DO NOTHING;
SET client_min_messages = warning;

-- a 12-month retention drops the two old months whole, and keeps the newer ones
SET broadcast_engine.history_retention = 12;
SELECT * FROM broadcast.maintain_history();
SELECT * FROM pg_temp.parts();
-- h2 keeps one month: its older rows go one by one; h1 keeps its own
SELECT broadcast.update_workspace('h2', '{"history_retention": 1}');
SELECT * FROM broadcast.maintain_history();
SELECT workspace_id, count(*) FROM broadcast.message_history GROUP BY 1 ORDER BY 1;
-- a workspace that keeps everything (0) stops partition drops for all
SET broadcast_engine.history_retention = 1;
SELECT broadcast.update_workspace('h1', '{"history_retention": 0}');
SELECT * FROM broadcast.maintain_history();
SELECT * FROM pg_temp.parts();
-- the scheduler's hourly call: not due again within the hour
UPDATE broadcast.instance SET history_maintained_at = now() - interval '2 hours';
SELECT broadcast._maintain_history_due() AS ran, broadcast._maintain_history_due() AS ran_again;
-- not while pg_restore is connected: a restore may outlast the hour
UPDATE broadcast.instance SET history_maintained_at = now() - interval '2 hours';
SET application_name = 'pg_restore';
SELECT broadcast._maintain_history_due() AS ran_during_restore;
RESET application_name;
SELECT broadcast._maintain_history_due() AS ran_after_restore;

RESET broadcast_engine.history_retention;
-- the longest retention a workspace may set reaches before 1970: still runs
SELECT broadcast.update_workspace('h2', '{"history_retention": 1200}');
SELECT deleted FROM broadcast.maintain_history();
SELECT broadcast.drop_workspace('h1');
SELECT broadcast.drop_workspace('h2');
DROP ROLE hist_tenant;

-- ---- the 1.2 update: queued and history rows all kept, history sorted into months ----
DROP EXTENSION broadcast_engine;
CREATE EXTENSION broadcast_engine VERSION '1.2';
SELECT broadcast.create_workspace('u1', 'Upgraded');
SELECT broadcast.create_list('u1', 'l', 'L');
INSERT INTO broadcast.contacts (workspace_id, email) SELECT 'u1', 'q' || i || '@x.test' FROM generate_series(1, 3) i;
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
SELECT 'u1', 'b', 'q' || i || '@x.test', 'i', 'l', broadcast._uuid_v7() FROM generate_series(1, 3) i;
INSERT INTO broadcast.message_history (workspace_id, message_id, email, status, provider_message_id, broadcast_id)
SELECT 'u1', pg_temp.v7(pg_temp.month_at(k) + make_interval(mins => i), 'u' || k || i), 'r' || i || '@x.test', 'sent',
	   'p' || k || i, 'b'
  FROM unnest(ARRAY[-3, 0]) k, generate_series(1, 4) i;
INSERT INTO broadcast.message_history (workspace_id, message_id, email, status)
VALUES ('u1', '00000000-0000-4000-8000-000000000001', 'old@x.test', 'sent');
SELECT broadcast.create_integration('u1', 'i', 'smtp', '{"host": "localhost"}');
INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status)
VALUES ('u1', 'b', 'B', '{l}', 'i', 't', 'completed');
CREATE TEMP TABLE stats_before AS SELECT * FROM broadcast.broadcast_stats('u1', 'b');
CREATE TEMP TABLE before_update AS
SELECT 'history' AS t, md5(string_agg(h::text, ',' ORDER BY h.message_id)) AS rows, count(*) FROM broadcast.message_history h
UNION ALL
SELECT 'queue', md5(string_agg(q::text, ',' ORDER BY q.email)), count(*) FROM broadcast.email_queue q;
-- a view of the user's own over the history stops the update, saying why
CREATE VIEW my_history AS SELECT email FROM broadcast.message_history;
ALTER EXTENSION broadcast_engine UPDATE;
DROP VIEW my_history;
ALTER EXTENSION broadcast_engine UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'broadcast_engine';
-- the same rows (the new columns of 1.3 are NULL on both sides)
SELECT b.t, b.count, a.rows = b.rows AS same
  FROM before_update b
  JOIN (SELECT 'history' AS t, md5(string_agg(ROW(h.workspace_id, h.message_id, h.broadcast_id, h.template_id,
			h.template_version, h.variation, h.list_id, h.email, h.integration_id, h.provider, h.provider_message_id,
			h.status, h.attempts, h.error, h.sent_at, h.failed_at, h.delivered_at, h.opened_at, h.clicked_at,
			h.bounced_at, h.bounce_type, h.complained_at, h.unsubscribed_at, h.created_at)::text, ','
			ORDER BY h.message_id)) AS rows
		  FROM broadcast.message_history h
		UNION ALL
		SELECT 'queue', md5(string_agg(ROW(q.workspace_id, q.broadcast_id, q.email, q.integration_id, q.list_id,
			q.variation, q.message_id, q.status, q.attempts, q.next_attempt_at, q.last_error, q.lease_until)::text, ','
			ORDER BY q.email))
		  FROM broadcast.email_queue q) a ON a.t = b.t
 ORDER BY 1;
SELECT * FROM pg_temp.parts();
SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'u1' AND provider_message_id = 'p-31';
-- the broadcast's statistics as before: its message id range came from its moved rows
SELECT (SELECT max(x.sent) FROM stats_before x) AS sent,
	   (SELECT string_agg(x::text, ';' ORDER BY x::text) FROM stats_before x)
	   = (SELECT string_agg(y::text, ';' ORDER BY y::text) FROM broadcast.broadcast_stats('u1', 'b') y) AS same_stats;
SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relname LIKE 'message_history%' ORDER BY 1;
DROP EXTENSION broadcast_engine;
CREATE EXTENSION broadcast_engine;
