-- Segments, follow-ups, previews and test sends (issue 17).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT broadcast.create_workspace('sg', 'Segments', 'UTC', '{"default_from_email": "news@sg.test"}');
SELECT broadcast.create_template('sg', 'main', 'Hello {{ contact.first_name }}', '<p>hi</p>');
SELECT broadcast.create_template('sg', 'again', 'Did you see?', '<p>again</p>');
SELECT broadcast.create_integration('sg', 'smtp', 'smtp', '{"host": "localhost"}');
SELECT broadcast.create_list('sg', 'news', 'News'), broadcast.create_list('sg', 'promo', 'Promo'),
	   broadcast.create_list('sg', 'block', 'Blocked');

-- contacts with fields and properties of every kind
SELECT broadcast.upsert_contacts('sg', '[
	{"email": "ann@x.test", "first_name": "Ann", "language": "fr",
	 "properties": {"plan": "pro", "age": 31, "tags": ["vip", "beta"], "signup": "2026-01-10", "address": {"city": "Lyon"}}},
	{"email": "bob@x.test", "first_name": "Bob", "language": "en",
	 "properties": {"plan": "free", "age": 17, "tags": ["beta"], "signup": "2020-01-01"}},
	{"email": "cy@x.test", "first_name": "Cy", "properties": {"plan": "pro", "age": "old", "note": "50% off"}},
	{"email": "di@x.test", "first_name": "Di", "language": "fr", "properties": {"plan": "team", "age": 45}},
	{"email": "ed@x.test", "first_name": "O''Hara", "properties": {"plan": "pro"}},
	{"email": "fay@x.test", "first_name": "Fay", "properties": {"plan": "pro", "address": {"city": "Paris"}}},
	{"email": "gus@x.test", "first_name": "Gus", "properties": {"plan": "free"}}
]');
-- news: ann, bob, di (active); promo: cy (active), fay (pending), gus (unsubscribed)
SELECT broadcast.subscribe('sg', 'news', ARRAY['ann@x.test', 'bob@x.test', 'di@x.test']);
SELECT broadcast.subscribe('sg', 'promo', ARRAY['cy@x.test', 'ed@x.test']);
SELECT broadcast.subscribe('sg', 'promo', ARRAY['fay@x.test'], 'pending');
SELECT broadcast.subscribe('sg', 'promo', ARRAY['gus@x.test']);
SELECT broadcast.unsubscribe_contact('sg', 'gus@x.test', 'promo');
SELECT broadcast.subscribe('sg', 'block', ARRAY['di@x.test']);
SELECT broadcast.suppress('sg', ARRAY['ed@x.test']);

-- a past broadcast's history: ann opened and clicked, bob opened, cy received only, di bounced
INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status, completed_at)
VALUES ('sg', 'past', 'Past', '{news,promo}', 'smtp', 'main', 'completed', now() - interval '3 days');
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, status, sent_at, opened_at, clicked_at, bounced_at)
VALUES ('sg', gen_random_uuid(), 'past', 'ann@x.test', 'sent', now() - interval '3 days', now() - interval '2 days', now() - interval '2 days', NULL),
	   ('sg', gen_random_uuid(), 'past', 'bob@x.test', 'sent', now() - interval '3 days', now() - interval '40 days', NULL, NULL),
	   ('sg', gen_random_uuid(), 'past', 'cy@x.test', 'sent', now() - interval '3 days', NULL, NULL, NULL),
	   ('sg', gen_random_uuid(), 'past', 'di@x.test', 'sent', now() - interval '3 days', NULL, NULL, now() - interval '3 days'),
	   ('sg', gen_random_uuid(), 'past', 'fay@x.test', 'failed', NULL, NULL, NULL, NULL);

-- previews: every kind of condition; the sample is in email order
CREATE FUNCTION pg_temp.pv(d jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT format('%s matching, %s reachable: %s', p.matching, p.reachable,
				  (SELECT string_agg(x->>'email', ' ') FROM jsonb_array_elements(p.sample_contacts) x))
	  FROM broadcast.preview_segment('sg', d, sample => 10) p
$$;
SELECT pg_temp.pv('{"field": "properties.plan", "op": "eq", "value": "pro"}');
SELECT pg_temp.pv('{"field": "properties.plan", "op": "ne", "value": "pro"}');
SELECT pg_temp.pv('{"field": "properties.plan", "op": "in", "value": ["team", "free"]}');
SELECT pg_temp.pv('{"field": "properties.plan", "op": "not_in", "value": ["pro"]}');
SELECT pg_temp.pv('{"field": "properties.tags", "op": "contains", "value": "vip"}');
SELECT pg_temp.pv('{"field": "properties.note", "op": "contains", "value": "50%"}');
SELECT pg_temp.pv('{"field": "properties.address.city", "op": "eq", "value": "Lyon"}');
SELECT pg_temp.pv('{"field": "properties.address", "op": "exists"}');
SELECT pg_temp.pv('{"field": "properties.plan", "op": "starts_with", "value": "te"}');
SELECT pg_temp.pv('{"field": "properties.plan", "op": "starts_with", "value": 1}');
SELECT pg_temp.pv('{"field": "properties.age", "op": "gte", "value": 30}');
SELECT pg_temp.pv('{"field": "properties.age", "op": "lt", "value": 30}');
SELECT pg_temp.pv('{"field": "properties.signup", "op": "gt", "value": "2025-01-01"}');
SELECT pg_temp.pv('{"field": "properties.signup", "op": "older_than", "value": "1 year"}');
SELECT pg_temp.pv('{"field": "language", "op": "eq", "value": "fr"}');
SELECT pg_temp.pv('{"not": {"field": "language", "op": "eq", "value": "fr"}}');
SELECT pg_temp.pv('{"field": "language", "op": "exists"}');
SELECT pg_temp.pv('{"field": "first_name", "op": "starts_with", "value": "O''"}');
SELECT pg_temp.pv('{"field": "email", "op": "in", "value": ["ANN@x.test", "gus@x.test"]}');
SELECT pg_temp.pv('{"field": "created_at", "op": "within", "value": "30 days"}');
SELECT pg_temp.pv('{"field": "created_at", "op": "lt", "value": "2000-01-01"}');
SELECT pg_temp.pv('{"list": "promo"}');
SELECT pg_temp.pv('{"list": "promo", "status": "any"}');
SELECT pg_temp.pv('{"list": "promo", "status": "unsubscribed"}');
SELECT pg_temp.pv('{"engagement": "received", "broadcast": "past"}');
SELECT pg_temp.pv('{"engagement": "opened"}');
SELECT pg_temp.pv('{"engagement": "opened", "within": "30 days"}');
SELECT pg_temp.pv('{"engagement": "clicked", "since": "2000-01-01"}');
SELECT pg_temp.pv('{"engagement": "bounced"}');
SELECT pg_temp.pv('{"engagement": "never_opened"}');
SELECT pg_temp.pv('{"and": [{"engagement": "received", "broadcast": "past"}, {"not": {"engagement": "opened", "broadcast": "past"}}]}');
SELECT pg_temp.pv('{"or": [{"and": [{"field": "properties.plan", "op": "eq", "value": "pro"},
								   {"field": "language", "op": "eq", "value": "fr"}]},
						   {"field": "properties.age", "op": "gt", "value": 40}]}');
SELECT matching, reachable, jsonb_array_length(sample_contacts) AS sampled
  FROM broadcast.preview_segment('sg', '{"field": "email", "op": "contains", "value": "@"}', sample => 2);

-- validation: unknown fields, operators and keys, named with their path in the tree
SELECT pg_temp.pv('{"and": [{"field": "language", "op": "eq", "value": "fr"}, {"field": "shoe_size", "op": "eq", "value": 1}]}');
SELECT pg_temp.pv('{"or": [{"not": {"field": "language", "op": "like", "value": "fr"}}]}');
SELECT pg_temp.pv('{"field": "language", "op": "eq", "value": "fr", "extra": 1}');
SELECT pg_temp.pv('{"xor": []}');
SELECT pg_temp.pv('{"and": []}');
SELECT pg_temp.pv('[1, 2]');
SELECT pg_temp.pv('{"field": "language", "op": "gt", "value": "fr"}');
SELECT pg_temp.pv('{"field": "language", "op": "eq", "value": 5}');
SELECT pg_temp.pv('{"field": "language", "op": "eq"}');
SELECT pg_temp.pv('{"field": "language", "op": "exists", "value": 1}');
SELECT pg_temp.pv('{"field": "created_at", "op": "within", "value": "30 fortnights"}');
SELECT pg_temp.pv('{"field": "created_at", "op": "within", "value": "99999 years"}');
SELECT pg_temp.pv('{"field": "created_at", "op": "gt", "value": "yesterday"}');
SELECT pg_temp.pv('{"field": "created_at", "op": "eq", "value": "2020-01-01"}');
SELECT pg_temp.pv('{"field": "properties.", "op": "exists"}');
SELECT pg_temp.pv('{"field": "properties.a", "op": "in", "value": []}');
SELECT pg_temp.pv('{"list": "nope"}');
SELECT pg_temp.pv('{"list": "news", "status": "gone"}');
SELECT pg_temp.pv('{"engagement": "forwarded"}');
SELECT pg_temp.pv('{"engagement": "opened", "broadcast": "nope"}');
SELECT pg_temp.pv('{"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"field": "email", "op": "exists"}}}}}}}}}}}');
SELECT pg_temp.pv(jsonb_build_object('field', 'email', 'op', 'in', 'value', (SELECT jsonb_agg(repeat('x', 100) || i) FROM generate_series(1, 700) i)));
SELECT pg_temp.pv(NULL);
SELECT * FROM broadcast.preview_segment('sg', segment_id => 'nope');
SELECT * FROM broadcast.preview_segment('sg', '{"list": "news"}', sample => 1000);
SELECT * FROM broadcast.preview_segment('sg');

-- SQL injection: values are literals, field names and operators are checked against a list
SELECT pg_temp.pv('{"field": "first_name", "op": "eq", "value": "x'') OR true OR (''"}');
SELECT pg_temp.pv('{"field": "first_name", "op": "in", "value": ["O''Hara", "x\"} OR true --"]}');
SELECT pg_temp.pv('{"field": "properties.plan'') OR true OR (''", "op": "exists"}');
SELECT pg_temp.pv('{"field": "properties.plan", "op": "eq", "value": "x''::jsonb OR true OR ''1"}');
SELECT pg_temp.pv('{"field": "email; DROP TABLE broadcast.contacts; --", "op": "exists"}');
SELECT pg_temp.pv('{"field": "email", "op": "eq; DROP TABLE broadcast.contacts", "value": "x"}');
SELECT pg_temp.pv('{"engagement": "opened", "within": "1 day''::interval OR true OR ''1 day"}');
SELECT pg_temp.pv('{"list": "news'' OR true OR ''"}');
SELECT count(*) AS contacts_still_there FROM broadcast.contacts WHERE workspace_id = 'sg';
-- how the values appear in the compiled expression: quoted literals
SELECT broadcast._segment_compile('sg', '{"field": "first_name", "op": "eq", "value": "x'') OR true OR (''"}');
SELECT broadcast._segment_compile('sg', '{"field": "properties.a''b.c", "op": "gt", "value": 5}');

-- saved segments: create, duplicate, update, list, drop
SELECT broadcast.create_segment('sg', 'pros', 'Pro plan', '{"field": "properties.plan", "op": "eq", "value": "pro"}');
SELECT broadcast.create_segment('sg', 'pros', 'Again', '{"field": "properties.plan", "op": "eq", "value": "pro"}');
SELECT broadcast.create_segment('sg', 'bad', 'Bad', '{"field": "nope", "op": "eq", "value": 1}');
SELECT broadcast.create_segment('sg', 'bad id!', 'Bad', '{"field": "email", "op": "exists"}');
SELECT broadcast.create_segment('sg', 'noname', '', '{"field": "email", "op": "exists"}');
SELECT broadcast.create_segment('sg', 'french', 'French', '{"field": "language", "op": "eq", "value": "fr"}');
SELECT broadcast.create_segment('sg', 'tmp', 'Temporary', '{"field": "email", "op": "exists"}');
SELECT broadcast.update_segment('sg', 'tmp', name => 'Renamed');
SELECT broadcast.update_segment('sg', 'tmp', definition => '{"field": "email", "op": "bogus"}');
SELECT broadcast.update_segment('sg', 'missing', name => 'x');
SELECT segment_id, name, definition FROM broadcast.list_segments('sg');
SELECT broadcast.drop_segment('sg', 'tmp');
SELECT broadcast.drop_segment('sg', 'tmp');
SELECT * FROM broadcast.preview_segment('sg', segment_id => 'french', sample => 0);
SELECT count(*) AS segments_left FROM broadcast.segments WHERE workspace_id = 'sg';

-- a broadcast to a list and two segments, minus an exclusion list and suppressions
SELECT broadcast.create_broadcast('sg', 'nolist', 'No audience', '{}', 'smtp', 'main');
SELECT broadcast.create_broadcast('sg', 'noseg', 'Missing segment', '{}', 'smtp', 'main', segments => ARRAY['nope']);
SELECT broadcast.create_broadcast('sg', 'mix', 'Mixed', ARRAY['news'], 'smtp', 'main',
								  exclude_lists => ARRAY['block'], segments => ARRAY['pros', 'french']);
SELECT lists, segments FROM broadcast.broadcasts WHERE workspace_id = 'sg' AND broadcast_id = 'mix';
SELECT broadcast.drop_segment('sg', 'pros');
SELECT broadcast.schedule_broadcast('sg', 'mix') IS NOT NULL AS scheduled;
SELECT broadcast.update_segment('sg', 'pros', definition => '{"field": "email", "op": "exists"}');
-- tiny chunks: the keyset cursor crosses several transactions
SET broadcast_engine.chunk_size = 2;
CALL broadcast.run_tasks(30);
-- news (ann, bob, di) + pros (ann, cy, ed, fay) + french (ann, di): di excluded (block),
-- ed suppressed, fay pending on her only list; each once, through a list she is active on
SELECT email, list_id FROM broadcast.email_queue WHERE workspace_id = 'sg' AND broadcast_id = 'mix' ORDER BY email;
SELECT status, total_recipients, enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'sg' AND broadcast_id = 'mix';
SELECT phase, cursor_email FROM broadcast.tasks WHERE workspace_id = 'sg' AND broadcast_id = 'mix';
RESET broadcast_engine.chunk_size;

-- a segment-only A/B test: the sample and the remainder partition the audience
SELECT broadcast.create_segment('sg', 'everyone', 'Everyone', '{"field": "email", "op": "exists"}');
SELECT broadcast.create_broadcast('sg', 'ab', 'AB', '{}', 'smtp', variations => ARRAY['main', 'again'],
								  ab_sample_percent => 50, ab_auto => false, segments => ARRAY['everyone']);
SELECT broadcast.schedule_broadcast('sg', 'ab') IS NOT NULL AS scheduled;
CALL broadcast.run_tasks(10);
SELECT status, total_recipients, test_recipients FROM broadcast.broadcasts WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
SELECT count(*) AS test_rows, count(DISTINCT variation) AS variations FROM broadcast.email_queue WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
SELECT array_agg(email ORDER BY email) AS sampled INTO TEMP ab_test FROM broadcast.email_queue WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
DELETE FROM broadcast.email_queue WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
CALL broadcast.run_tasks(5);
SELECT broadcast.select_winner('sg', 'ab', 'again');
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
CALL broadcast.run_tasks(10);
-- the remainder went to the others, with the winner
SELECT count(*) AS remainder_rows, bool_and(variation = 1) AS winner_only,
	   bool_and(NOT email = ANY ((SELECT sampled FROM ab_test)::text[])) AS none_twice
  FROM broadcast.email_queue WHERE workspace_id = 'sg' AND broadcast_id = 'ab';
SELECT status, enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'sg' AND broadcast_id = 'ab';

-- follow-ups: the recipients of a completed broadcast who did not open it
SELECT broadcast.create_followup('sg', 'mix', 'fu0', 'again');
SELECT broadcast.create_followup('sg', 'past', 'fu1', 'again', condition => 'unread');
SELECT broadcast.create_followup('sg', 'past', 'fu1', 'nope');
SELECT broadcast.create_followup('sg', 'past', 'fu1', 'again', subject => 'Second chance');
SELECT broadcast.create_followup('sg', 'past', 'fu1', 'again');
SELECT broadcast.create_followup('sg', 'past', 'fu2', 'again', condition => 'not_clicked');
SELECT broadcast_id, name, lists, followup_of, followup_condition, template_id, status
  FROM broadcast.broadcasts WHERE workspace_id = 'sg' AND followup_of IS NOT NULL ORDER BY 1;
SELECT version, subject FROM broadcast.templates WHERE workspace_id = 'sg' AND template_id = 'again' ORDER BY version;
SELECT broadcast.schedule_broadcast('sg', 'fu1') IS NOT NULL, broadcast.schedule_broadcast('sg', 'fu2') IS NOT NULL;
CALL broadcast.run_tasks(10);
-- not opened: cy and di (received, never opened); not clicked: bob too (opened only)
SELECT broadcast_id, email FROM broadcast.email_queue WHERE workspace_id = 'sg' AND broadcast_id LIKE 'fu%' ORDER BY 1, 2;
SELECT v.version, t.subject FROM broadcast.broadcast_variations v JOIN broadcast.templates t USING (workspace_id, template_id, version)
 WHERE v.workspace_id = 'sg' AND v.broadcast_id = 'fu1';

-- test sends: queued at once for the given addresses, with a sample contact's data
SELECT email FROM broadcast.send_test('sg', 'mix', ARRAY['Team@Office.test', 'boss@office.test']);
SELECT q.email, q.list_id, q.variation, q.data_email, b.status, b.test_of
  FROM broadcast.email_queue q JOIN broadcast.broadcasts b USING (workspace_id, broadcast_id)
 WHERE q.workspace_id = 'sg' AND b.test_of IS NOT NULL ORDER BY q.email;
SELECT email FROM broadcast.send_test('sg', 'ab', ARRAY['team@office.test'], variation => 1, sample_email => 'bob@x.test');
SELECT q.variation, q.data_email FROM broadcast.email_queue q JOIN broadcast.broadcasts b USING (workspace_id, broadcast_id)
 WHERE q.workspace_id = 'sg' AND b.test_of = 'ab';
SELECT * FROM broadcast.send_test('sg', 'ab', ARRAY['team@office.test'], variation => 2);
SELECT * FROM broadcast.send_test('sg', 'mix', ARRAY['not an address']);
SELECT * FROM broadcast.send_test('sg', 'mix', '{}');
SELECT * FROM broadcast.send_test('sg', 'mix', ARRAY['a@office.test'], sample_email => 'nobody@x.test');
SELECT * FROM broadcast.send_test('sg', 'nope', ARRAY['a@office.test']);
-- a test's history is no engagement and is not in the original's statistics
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, status, sent_at, opened_at)
SELECT 'sg', gen_random_uuid(), b.broadcast_id, 'gus@x.test', 'sent', now(), now()
  FROM broadcast.broadcasts b WHERE b.workspace_id = 'sg' AND b.test_of = 'mix';
SELECT pg_temp.pv('{"engagement": "opened", "within": "1 hour"}');
SELECT count(*) AS stats_rows_with_sends FROM broadcast.broadcast_stats('sg', 'mix') WHERE sent > 0 OR opened > 0;

-- tenants: their own workspace only
CREATE ROLE seg_tenant NOLOGIN;
CREATE ROLE seg_other NOLOGIN;
SELECT broadcast.grant_workspace('sg', 'seg_tenant');
SELECT broadcast.create_workspace('sg2', 'Other');
SELECT broadcast.grant_workspace('sg2', 'seg_other');
SET ROLE seg_tenant;
SELECT broadcast.create_segment('sg', 'mine', 'Mine', '{"list": "news"}');
SELECT matching FROM broadcast.preview_segment('sg', segment_id => 'mine');
SELECT count(*) AS visible_segments FROM broadcast.segments;
RESET ROLE;
SET ROLE seg_other;
SELECT count(*) AS visible_segments FROM broadcast.segments;
SELECT * FROM broadcast.preview_segment('sg', '{"list": "news"}');
SELECT broadcast.drop_segment('sg', 'mine');
SELECT * FROM broadcast.send_test('sg', 'mix', ARRAY['a@office.test']);
RESET ROLE;

-- the plans of the audience queries use the shipped indexes (statistics made
-- first, so that the small tables give the same plan every run)
ANALYZE broadcast.contacts, broadcast.message_history;
SET enable_seqscan = off;
-- a property's equality is a containment test the GIN index answers
EXPLAIN (COSTS OFF)
SELECT 1 FROM broadcast.contacts c WHERE c.properties @> '{"plan": "pro"}' AND (c.properties #> '{plan}') = '"pro"';
-- engagement: one contact's history (a plain index scan or a bitmap one, as
-- the table's state suggests: the same index)
SET enable_bitmapscan = off;

EXPLAIN (COSTS OFF)
SELECT 1 FROM broadcast.message_history sh WHERE sh.workspace_id = 'sg' AND sh.email = 'ann@x.test'
   AND sh.opened_at IS NOT NULL;
-- a follow-up's audience: contacts in email order (the chunk's keyset), each
-- probing its own history (as on a large table, where the walk is the plan)
SET enable_hashagg = off;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_sort = off;
SET enable_material = off;
EXPLAIN (COSTS OFF)
SELECT c.email FROM broadcast.contacts c
 WHERE c.workspace_id = 'sg' AND c.email > 'b'
   AND EXISTS (SELECT 1 FROM broadcast.message_history sh
				WHERE sh.workspace_id = c.workspace_id AND sh.email = c.email AND sh.broadcast_id = 'past')
 ORDER BY c.email LIMIT 10;
RESET enable_seqscan;
RESET enable_hashagg;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_sort;
RESET enable_material;
RESET enable_bitmapscan;

SELECT broadcast.drop_workspace('sg');
SELECT broadcast.drop_workspace('sg2');
DROP ROLE seg_tenant;
DROP ROLE seg_other;
