-- Double opt-in and first-party tracking (86_optin_tracking.sql, src/tracking.c):
-- settings, tokens per purpose, the link rewriting, subscribe(double_opt_in),
-- confirmation, consent export, track() with machine flags, link and
-- engagement statistics.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE SCHEMA trk_t;
CREATE FUNCTION trk_t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || coalesce(nullif(' / ' || det, ' / '), '');
END
$$;
GRANT USAGE ON SCHEMA trk_t TO PUBLIC;

SELECT broadcast.create_workspace('tk', 'Track', 'UTC', '{"default_from_email": "news@example.test"}');
SELECT broadcast.create_list('tk', 'news', 'News');
SELECT broadcast.create_list('tk', 'deals', 'Deals');
SELECT broadcast.create_integration('tk', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 9}');
SELECT broadcast.create_template('tk', 'confirm', 'Confirm {{list.name}}', '<p><a href="{{confirm_url}}">Yes</a></p>');

-- settings: checked, bad ones refused with nothing written
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"tracking": true}') $$);
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"tracking": {"enabled": true}}') $$);
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"tracking": {"enabled": "yes", "base_url": "https://e.test/t"}}') $$);
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"tracking": {"enabled": true, "base_url": "https://e.test/t?x=\"1"}}') $$);
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"double_opt_in": {"template_id": "confirm"}}') $$);
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"double_opt_in": {"template_id": "confirm", "integration_id": "smtp", "base_url": "https://e.test/c", "expires_hours": 0}}') $$);
SELECT trk_t.err($$ SELECT broadcast.update_workspace('tk', '{"double_opt_in": {"template_id": "confirm", "integration_id": "smtp", "base_url": "https://e.test/c", "page": {"titel": "x"}}}') $$);
SELECT settings FROM broadcast.workspaces WHERE workspace_id = 'tk';
-- double opt-in before the setting exists
SELECT trk_t.err($$ SELECT broadcast.subscribe('tk', 'news', ARRAY['ann@example.com'], double_opt_in => true) $$);
SELECT count(*) AS members FROM broadcast.list_members WHERE workspace_id = 'tk';
SELECT broadcast.update_workspace('tk', '{"double_opt_in": {"template_id": "confirm", "integration_id": "smtp",
	"base_url": "https://e.test/c/", "expires_hours": 24, "page": {"title": "Confirm?"}},
	"tracking": {"enabled": true, "base_url": "https://e.test/t"}}') IS NOT NULL AS updated;

-- tokens: one purpose's token is no other's
SELECT s.unsubscribe_secret AS secret FROM broadcast.workspace_secrets s WHERE workspace_id = 'tk' \gset
SELECT broadcast._signed_token_make('confirm', :'secret', 'tk', 'news', 'ann@example.com',
	'01890000-0000-7000-8000-000000000001') AS ctok \gset
SELECT broadcast._signed_token_verify('confirm', :'ctok', :'secret') AS confirm_ok,
	   broadcast._signed_token_verify('unsubscribe', :'ctok', :'secret') AS as_unsubscribe,
	   broadcast._signed_token_verify('track', :'ctok', :'secret') AS as_track,
	   broadcast._unsub_token_verify(:'ctok', :'secret') AS unsub_verify;
SELECT broadcast._signed_token_make('unsubscribe', :'secret', 'tk', 'news', 'ann@example.com', NULL)
	 = broadcast._unsub_token_make(:'secret', 'tk', 'news', 'ann@example.com', NULL) AS same_as_unsub;
SELECT trk_t.err($$ SELECT broadcast._signed_token_verify('other', 'x', '\x01') $$);

-- the rewriting: web links only, entities decoded, the pixel before </body>
SELECT regexp_replace(broadcast._track_rewrite(
	'<html><body><a href="https://shop.test/a?x=1&amp;y=2">A</a> <A class=x HREF=''http://b.test/''>B</A>'
	|| '<a href="mailto:x@example.com">m</a><a href="#top">t</a><a href="https://e.test/u/unsub">u</a>'
	|| '<a data-href="https://no.test/" href="https://c.test/&eacute;">c</a></body></html>',
	'https://e.test/t', :'secret', 'tk', '01890000-0000-7000-8000-000000000002', 'https://e.test/u/unsub'),
	'/([a-z])/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+', '/\1/TOKEN', 'g') AS rewritten;
SELECT regexp_replace(broadcast._track_rewrite('<p>no body</p>', 'https://e.test/t', :'secret', 'tk',
	'01890000-0000-7000-8000-000000000002'), '/o/[A-Za-z0-9_.-]+', '/o/TOKEN') AS pixel_at_end;
-- the click token carries the index and the decoded target
SELECT substring(broadcast._track_rewrite('<a href="https://shop.test/a?x=1&amp;y=2">A</a>', 'https://e.test/t',
	:'secret', 'tk', '01890000-0000-7000-8000-000000000002') FROM '/c/([A-Za-z0-9_.-]+)') AS clicktok \gset
SELECT * FROM broadcast._unsub_token_parse(:'clicktok');
SELECT broadcast._signed_token_verify('track', :'clicktok', :'secret') AS track_ok;

-- double opt-in: pending members, one confirmation queued per address, consent recorded
SELECT broadcast.subscribe('tk', 'news', ARRAY['Ann@example.com', 'bob@example.com'], double_opt_in => true,
	source_ip => '192.0.2.7');
SELECT broadcast.subscribe('tk', 'news', ARRAY['cat@example.com']);
SELECT broadcast.suppress('tk', ARRAY['dan@example.com']);
SELECT broadcast.subscribe('tk', 'news', ARRAY['cat@example.com', 'dan@example.com'], double_opt_in => true);
SELECT broadcast.subscribe('tk', 'deals', ARRAY['ann@example.com'], double_opt_in => true);
SELECT list_id, email, status FROM broadcast.list_members WHERE workspace_id = 'tk' ORDER BY 1, 2;
SELECT broadcast_id, name, lists, integration_id, template_id, status, kind FROM broadcast.broadcasts
 WHERE workspace_id = 'tk';
SELECT variation, template_id, version FROM broadcast.broadcast_variations WHERE workspace_id = 'tk';
SELECT email, list_id, integration_id FROM broadcast.email_queue WHERE workspace_id = 'tk' ORDER BY email;
SELECT c.email, c.list_id, c.method, c.request_ip, c.confirmed_at IS NULL AS open,
	   c.message_id = q.message_id AS queued_message
  FROM broadcast.consents c
  LEFT JOIN broadcast.email_queue q ON q.workspace_id = c.workspace_id AND q.email = c.email
 WHERE c.workspace_id = 'tk' ORDER BY 1, 2;
-- asking again at once sends nothing more
SELECT broadcast.subscribe('tk', 'news', ARRAY['bob@example.com'], double_opt_in => true);
SELECT count(*) AS queued FROM broadcast.email_queue WHERE workspace_id = 'tk';
-- the id is reserved
SELECT trk_t.err($$ SELECT broadcast.create_broadcast('tk', 'double-opt-in', 'X', '{news}', 'smtp', 'confirm') $$);
-- a paused opt-in broadcast holds its confirmations: a subscribe queues, does not resume
SELECT broadcast.pause_broadcast('tk', 'double-opt-in');
SELECT broadcast.subscribe('tk', 'news', ARRAY['fay@example.com'], double_opt_in => true);
SELECT b.status, (SELECT count(*) FROM broadcast.email_queue q WHERE q.workspace_id = 'tk' AND q.email = 'fay@example.com') AS fay_queued
  FROM broadcast.broadcasts b WHERE b.workspace_id = 'tk' AND b.broadcast_id = 'double-opt-in';
SELECT broadcast.resume_broadcast('tk', 'double-opt-in');

-- confirming: the token of the queued message, with the edge's client address
SELECT q.message_id AS ann_mid FROM broadcast.email_queue q WHERE q.workspace_id = 'tk' AND q.email = 'ann@example.com' \gset
SELECT broadcast._signed_token_make('confirm', :'secret', 'tk', 'news', 'ann@example.com', :'ann_mid') AS ann_tok \gset
SELECT broadcast.confirm_page(:'ann_tok');
SELECT status FROM broadcast.list_members WHERE workspace_id = 'tk' AND email = 'ann@example.com' ORDER BY list_id;
SELECT trk_t.err(format($$ SELECT broadcast.confirm_subscription(%L) $$, overlay(:'ann_tok' placing CASE WHEN substr(:'ann_tok', length(:'ann_tok') - 4, 1) = 'A' THEN 'B' ELSE 'A' END from length(:'ann_tok') - 4 for 1)));
SELECT trk_t.err(format($$ SELECT broadcast.confirm_subscription(%L) $$,
	broadcast._signed_token_make('unsubscribe', :'secret', 'tk', 'news', 'ann@example.com', :'ann_mid')));
SELECT trk_t.err($$ SELECT broadcast.confirm_subscription('garbage') $$);
SELECT status FROM broadcast.list_members WHERE workspace_id = 'tk' AND email = 'ann@example.com' ORDER BY list_id;
SELECT broadcast.confirm_subscription(:'ann_tok', '198.51.100.4');
SELECT broadcast.confirm_subscription(:'ann_tok', 'not an address');
SELECT list_id, status FROM broadcast.list_members WHERE workspace_id = 'tk' AND email = 'ann@example.com' ORDER BY 1;
SELECT list_id, list_name, method, request_ip, confirmed_at IS NOT NULL AS confirmed, confirm_ip, member_status
  FROM broadcast.export_consents('tk', 'ANN@example.com');
-- an expired request cannot be confirmed
SELECT q.message_id AS bob_mid FROM broadcast.email_queue q WHERE q.workspace_id = 'tk' AND q.email = 'bob@example.com' \gset
UPDATE broadcast.consents SET requested_at = now() - interval '25 hours' WHERE workspace_id = 'tk' AND email = 'bob@example.com';
SELECT trk_t.err(format($$ SELECT broadcast.confirm_subscription(%L) $$,
	broadcast._signed_token_make('confirm', :'secret', 'tk', 'news', 'bob@example.com', :'bob_mid')));
SELECT status FROM broadcast.list_members WHERE workspace_id = 'tk' AND email = 'bob@example.com';

-- tracking: a sent message, its pixel and links
DELETE FROM broadcast.email_queue WHERE workspace_id = 'tk';
SELECT broadcast.create_template('tk', 'news', 'News', '<p><a href="https://shop.test/a">A</a><a href="https://shop.test/b">B</a><a href="https://shop.test/c">C</a></p>');
SELECT broadcast.create_broadcast('tk', 'b1', 'B1', '{news}', 'smtp', 'news');
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('tk', '01890000-0000-7000-8000-00000000000a', 'b1', 'news', 'news', 'ann@example.com', 'smtp', 'smtp', 'sent', now() - interval '1 hour'),
	   ('tk', '01890000-0000-7000-8000-00000000000b', 'b1', 'news', 'news', 'cat@example.com', 'smtp', 'smtp', 'sent', now() - interval '1 hour');
CREATE FUNCTION trk_t.tok(mid text, idx text, url text) RETURNS text LANGUAGE sql AS $$
	SELECT broadcast._signed_token_make('track', s.unsubscribe_secret, 'tk', idx, url, mid)
	  FROM broadcast.workspace_secrets s WHERE s.workspace_id = 'tk'
$$;
\set browser 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'
-- a person's open and click
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000a', 'o', '-'), :'browser', '203.0.113.9');
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000a', '1', 'https://shop.test/b'), :'browser');
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000a', '1', 'https://shop.test/b'), :'browser');
-- Apple's proxy opens; a scanner follows every link at once (one transaction: one now())
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000b', 'o', '-'), 'Mozilla/5.0', '17.58.1.1');
BEGIN;
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000b', '0', 'https://shop.test/a'), 'Mimecast URL scanner');
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000b', '1', 'https://shop.test/b'), :'browser');
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000b', '2', 'https://shop.test/c'), :'browser');
COMMIT;
-- a click at sending time; an open without a user agent
BEGIN;
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('tk', '01890000-0000-7000-8000-00000000000c', 'b1', 'news', 'news', 'eve@example.com', 'smtp', 'smtp', 'sent', now());
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000c', '0', 'https://shop.test/a'), :'browser');
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-00000000000c', 'o', '-'), NULL);
COMMIT;
-- a message this server does not know: redirected, nothing recorded
SELECT * FROM broadcast.track(trk_t.tok('01890000-0000-7000-8000-0000000000ff', '0', 'https://shop.test/a'), :'browser');
-- tampered, another purpose's, or a bad index: refused
SELECT trk_t.tok('01890000-0000-7000-8000-00000000000a', '0', 'https://shop.test/a') AS good \gset
SELECT trk_t.err(format($$ SELECT broadcast.track(%L) $$,
	overlay(:'good' placing CASE WHEN substr(:'good', 12, 1) = 'A' THEN 'B' ELSE 'A' END from 12 for 1)));
-- a foreign URL signed with another key
SELECT trk_t.err(format($$ SELECT broadcast.track(%L) $$,
	broadcast._signed_token_make('track', '\x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
		'tk', '0', 'https://evil.test/', '01890000-0000-7000-8000-00000000000a')));
SELECT trk_t.err(format($$ SELECT broadcast.track(%L) $$,
	left(trk_t.tok('01890000-0000-7000-8000-00000000000a', '0', 'https://shop.test/a'), -2) || 'AA'));
SELECT trk_t.err(format($$ SELECT broadcast.track(%L) $$,
	broadcast._signed_token_make('unsubscribe', :'secret', 'tk', '0', 'https://evil.test/', '01890000-0000-7000-8000-00000000000a')));
SELECT trk_t.err(format($$ SELECT broadcast.track(%L) $$, trk_t.tok('01890000-0000-7000-8000-00000000000a', 'x', 'https://shop.test/')));
SELECT email, opened_at IS NOT NULL AS opened, open_machine, clicked_at IS NOT NULL AS clicked, click_machine
  FROM broadcast.message_history WHERE workspace_id = 'tk' ORDER BY email;
SELECT m.email, e.event, e.link_index, e.url, e.machine, e.machine_reason, e.hits
  FROM broadcast.tracked_events e JOIN broadcast.message_history m USING (workspace_id, message_id)
 WHERE e.workspace_id = 'tk' ORDER BY 1, 2, 3, 5;
SELECT * FROM broadcast.link_stats('tk', 'b1');
-- the history rows above were written here, not by a sender
SELECT broadcast.refresh_broadcast_ranges('tk') AS ranges;
SELECT * FROM broadcast.engagement_stats('tk', 'b1');

-- the broadcast's switch, before it sends only
SELECT broadcast.set_broadcast_tracking('tk', 'b1', false);
SELECT tracking FROM broadcast.broadcasts WHERE workspace_id = 'tk' AND broadcast_id = 'b1';
SELECT trk_t.err($$ SELECT broadcast.set_broadcast_tracking('tk', 'double-opt-in', true) $$);

-- the edge's role may call the edge's functions and read nothing
SELECT trk_t.tok('01890000-0000-7000-8000-00000000000a', '2', 'https://shop.test/c') AS ctok2 \gset
SET ROLE broadcast_edge;
SELECT trk_t.err($$ SELECT count(*) FROM broadcast.consents $$);
SELECT trk_t.err($$ SELECT * FROM broadcast.link_stats('tk', 'b1') $$);
SELECT (broadcast.track(:'ctok2', 'Firefox')).url;
RESET ROLE;

-- erasure takes the consent records with the contact
SELECT broadcast.forget_contact('tk', 'ann@example.com') IS NOT NULL AS forgotten;
SELECT count(*) AS consents_left FROM broadcast.consents WHERE workspace_id = 'tk' AND email = 'ann@example.com';
-- and the targets of their clicks (a link may be personal); the counts stay
SELECT link_index, url, hits FROM broadcast.tracked_events
 WHERE workspace_id = 'tk' AND message_id = '01890000-0000-7000-8000-00000000000a' ORDER BY 1;

SELECT broadcast.drop_workspace('tk');
DROP SCHEMA trk_t CASCADE;
