-- Delivery events: every provider's webhook payload (test/fixtures/events,
-- shaped as in the providers' documentation), signatures, idempotency,
-- events before their history row, suppression, one-click unsubscribe.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never
\set VERBOSITY default

-- the signed fixtures carry fixed 2023 timestamps: their age is tested apart
SET broadcast_engine.webhook_tolerance = 0;
SET broadcast_engine.sns_max_age = 0;

\set sendgrid `cat test/fixtures/events/sendgrid.json`
\set mg_delivered `cat test/fixtures/events/mailgun_delivered.json`
\set mg_failed `cat test/fixtures/events/mailgun_failed.json`
\set mg_temporary `cat test/fixtures/events/mailgun_temporary.json`
\set mg_complained `cat test/fixtures/events/mailgun_complained.json`
\set pm_delivery `cat test/fixtures/events/postmark_delivery.json`
\set pm_bounce `cat test/fixtures/events/postmark_bounce.json`
\set pm_spam `cat test/fixtures/events/postmark_spam.json`
\set pm_open_click `cat test/fixtures/events/postmark_open_click.json`
\set sparkpost `cat test/fixtures/events/sparkpost.json`
\set mailjet `cat test/fixtures/events/mailjet.json`
\set resend `cat test/fixtures/events/resend.json`
\set resend_headers `cat test/fixtures/events/resend.headers.json`
\set resend_open `cat test/fixtures/events/resend_open.json`
\set resend_open_headers `cat test/fixtures/events/resend_open.headers.json`
\set sns_subscription `cat test/fixtures/events/sns_subscription.json`
\set sns_delivery `cat test/fixtures/events/sns_delivery.json`
\set sns_bounce `cat test/fixtures/events/sns_bounce.json`
\set sns_complaint `cat test/fixtures/events/sns_complaint.json`
\set sns_open `cat test/fixtures/events/sns_open.json`
\set sns_cert `cat test/fixtures/events/sns_test_cert.pem`
\set sns_other_topic `cat test/fixtures/events/sns_other_topic.json`
\set sns_subscription_other `cat test/fixtures/events/sns_subscription_other.json`

-- one workspace per provider, with a list of seven members and their messages
CREATE SCHEMA evt;
GRANT USAGE ON SCHEMA evt TO PUBLIC;
CREATE FUNCTION evt.mid(n integer) RETURNS uuid LANGUAGE sql
AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;
CREATE FUNCTION evt.setup(ws text, provider text, config jsonb, base integer, pids text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	people text[] := ARRAY['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
	i integer;
BEGIN
	PERFORM broadcast.create_workspace(ws, ws);
	PERFORM broadcast.create_list(ws, 'news', 'News');
	PERFORM broadcast.create_list(ws, 'promo', 'Promo');
	PERFORM broadcast.subscribe(ws, 'news', ARRAY(SELECT p || '@example.com' FROM unnest(people || 'gina'::text) p));
	PERFORM broadcast.subscribe(ws, 'promo', ARRAY['alice@example.com', 'dave@example.com']);
	PERFORM broadcast.create_integration(ws, 'esp', provider, config,
										 CASE WHEN provider = 'smtp' THEN NULL ELSE 'key' END);
	/* the broadcast the history rows below belong to */
	INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status)
	VALUES (ws, 'b', 'B', '{news}', 'esp', 't', 'completed');
	FOR i IN 1 .. 6 LOOP
		INSERT INTO broadcast.message_history
			(workspace_id, message_id, broadcast_id, template_id, variation, list_id, email, integration_id,
			 provider, provider_message_id, status, sent_at)
		VALUES (ws, evt.mid(base + i), 'b', 't', 0, 'news', people[i] || '@example.com', 'esp',
				provider, pids[i], 'sent', '2023-11-14 22:00:00+00');
	END LOOP;
END
$$;
CREATE FUNCTION evt.history(ws text)
RETURNS TABLE (email text, delivered timestamptz, opened timestamptz, clicked timestamptz,
			   bounced timestamptz, bounce_type text, complained timestamptz, unsubscribed timestamptz)
LANGUAGE sql AS $$
	SELECT h.email, h.delivered_at, h.opened_at, h.clicked_at, h.bounced_at, h.bounce_type,
		   h.complained_at, h.unsubscribed_at
	  FROM broadcast.message_history h WHERE h.workspace_id = ws ORDER BY h.email
$$;
CREATE FUNCTION evt.audience(ws text)
RETURNS TABLE (email text, statuses text, suppression text)
LANGUAGE sql AS $$
	SELECT c.email,
		   (SELECT string_agg(m.list_id || ':' || m.status, ' ' ORDER BY m.list_id) FROM broadcast.list_members m
			 WHERE m.workspace_id = ws AND m.email = c.email),
		   (SELECT s.reason FROM broadcast.suppressions s WHERE s.workspace_id = ws AND s.email = c.email)
	  FROM broadcast.contacts c WHERE c.workspace_id = ws ORDER BY c.email
$$;

-- ------------------------------------------------------------------------
-- SendGrid: an array of every event type; custom_args carry our id
-- ------------------------------------------------------------------------
SELECT evt.setup('sg', 'sendgrid', '{}', 100,
	ARRAY['sgid101', 'sgid102', 'sgid103', 'sgid104', 'sgid105', 'sgid106']);
SELECT * FROM broadcast.record_events('sg', 'esp', :'sendgrid');
SELECT * FROM evt.history('sg');
SELECT * FROM evt.audience('sg');
SELECT message_id, event, occurred_at FROM broadcast.pending_events WHERE workspace_id = 'sg';
-- a replay changes nothing
SELECT * FROM broadcast.record_events('sg', 'esp', :'sendgrid');
-- the parked delivery is applied when the sender's batch commits its history row
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('sg', evt.mid(107), 'b', 't', 'news', 'gina@example.com', 'esp', 'sendgrid', 'sent', now());
SELECT email, delivered_at FROM broadcast.message_history WHERE workspace_id = 'sg' AND email = 'gina@example.com';
SELECT count(*) AS still_pending FROM broadcast.pending_events WHERE workspace_id = 'sg';
-- not an array
SELECT * FROM broadcast.record_events('sg', 'esp', '{"event": "open"}');

-- ------------------------------------------------------------------------
-- Mailgun: signed with the webhook signing key, one event per request
-- ------------------------------------------------------------------------
SELECT evt.setup('mg', 'mailgun', '{"domain": "mg.example.com"}', 200,
	ARRAY['<20231114.201@mg.example.com>', NULL, NULL, NULL, NULL, NULL]);
-- without a key, signed providers' payloads are refused
SELECT * FROM broadcast.record_events('mg', 'esp', :'mg_delivered');
SELECT broadcast.set_webhook_secret('mg', 'esp', 'key-test-mailgun-signing-0123456789');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('mg', 'esp', :'mg_delivered');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('mg', 'esp', :'mg_failed');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('mg', 'esp', :'mg_temporary');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('mg', 'esp', :'mg_complained');
SELECT * FROM evt.history('mg');
SELECT * FROM evt.audience('mg');
-- forged: signed with another key, a changed signature, no signature at all
SELECT * FROM broadcast.record_events('mg', 'esp', jsonb_set(:'mg_delivered'::jsonb, '{signature,signature}',
	to_jsonb(encode(broadcast._hmac_sha256('another-key'::bytea, convert_to(
		(:'mg_delivered'::jsonb #>> '{signature,timestamp}') || (:'mg_delivered'::jsonb #>> '{signature,token}'), 'UTF8')), 'hex'))));
SELECT * FROM broadcast.record_events('mg', 'esp',
	jsonb_set(:'mg_delivered'::jsonb, '{signature,signature}', to_jsonb(repeat('ab', 32))));
SELECT * FROM broadcast.record_events('mg', 'esp', :'mg_delivered'::jsonb - 'signature');
-- a signature older than broadcast_engine.webhook_tolerance is refused
SET broadcast_engine.webhook_tolerance = '5min';
\set VERBOSITY terse
SELECT * FROM broadcast.record_events('mg', 'esp', :'mg_delivered');
\set VERBOSITY default
SELECT broadcast._check_signature_age('mailgun', (floor(extract(epoch FROM now()))::bigint - 3600)::text);
-- a fresh one passes
SELECT received, applied, changed FROM broadcast.record_events('mg', 'esp',
	jsonb_build_object('signature', jsonb_build_object('timestamp', extract(epoch FROM now())::bigint::text,
		'token', 'fresh-token',
		'signature', encode(broadcast._hmac_sha256('key-test-mailgun-signing-0123456789'::bytea,
			convert_to(extract(epoch FROM now())::bigint::text || 'fresh-token', 'UTF8')), 'hex')),
		'event-data', jsonb_build_object('event', 'opened', 'timestamp', 1700000100, 'recipient', 'alice@example.com',
			'user-variables', jsonb_build_object('message_id', evt.mid(201)))));
SET broadcast_engine.webhook_tolerance = 0;

-- ------------------------------------------------------------------------
-- Postmark: Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange
-- ------------------------------------------------------------------------
SELECT evt.setup('pm', 'postmark', '{}', 300, ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]);
SELECT received, applied, changed, suppressed FROM broadcast.record_events('pm', 'esp', :'pm_delivery');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('pm', 'esp', :'pm_bounce');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('pm', 'esp', :'pm_spam');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('pm', 'esp', :'pm_open_click');
SELECT * FROM evt.history('pm');
SELECT * FROM evt.audience('pm');
-- Postmark does not sign: there is no key to store
SELECT broadcast.set_webhook_secret('pm', 'esp', 'x');

-- ------------------------------------------------------------------------
-- SES through SNS: subscription confirmation, event publishing, feedback
-- notifications, RSA signatures (versions 1 and 2)
-- ------------------------------------------------------------------------
-- without a topic, SNS messages are refused (any AWS account can sign for its own topics)
SELECT evt.setup('ses', 'ses', '{"region": "us-east-1", "access_key_id": "AKIDEXAMPLE"}', 700,
	ARRAY['0100018bcd0701-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000', NULL,
		  '0100018bcd0703-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000', NULL, NULL, NULL]);
SELECT broadcast.set_webhook_secret('ses', 'esp', 'not a certificate');
SELECT broadcast.set_webhook_secret('ses', 'esp', :'sns_cert');
SELECT received FROM broadcast.record_events('ses', 'esp', :'sns_delivery');
SELECT broadcast.update_integration('ses', 'esp', config => '{"region": "us-east-1", "access_key_id": "AKIDEXAMPLE", "topic_arn": "arn:aws:sns:us-east-1:123456789012:not an arn"}');
SELECT broadcast.update_integration('ses', 'esp', config => '{"region": "us-east-1", "access_key_id": "AKIDEXAMPLE", "topic_arn": "arn:aws:sns:us-east-1:123456789012:ses-events"}');
SELECT received, confirm_url FROM broadcast.record_events('ses', 'esp', :'sns_subscription');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('ses', 'esp', :'sns_delivery');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('ses', 'esp', :'sns_bounce');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('ses', 'esp', :'sns_complaint');
SELECT received, applied, changed, suppressed FROM broadcast.record_events('ses', 'esp', :'sns_open');
SELECT * FROM evt.history('ses');
SELECT * FROM evt.audience('ses');
-- forged: another message under the same signature, a changed subscribe URL, no signature
SELECT * FROM broadcast.record_events('ses', 'esp',
	jsonb_set(:'sns_bounce'::jsonb, '{Message}', to_jsonb(replace(:'sns_bounce'::jsonb->>'Message', 'bob@', 'alice@'))));
SELECT * FROM broadcast.record_events('ses', 'esp',
	jsonb_set(:'sns_subscription'::jsonb, '{SubscribeURL}', '"https://evil.example.com/"'));
SELECT * FROM broadcast.record_events('ses', 'esp', :'sns_open'::jsonb - 'Signature');
-- SES events only arrive wrapped in SNS
SELECT * FROM broadcast.record_events('ses', 'esp', :'sns_open'::jsonb->'Message');
-- validly signed, but from another account's topic: no suppression, no confirm URL
SELECT * FROM broadcast.record_events('ses', 'esp', :'sns_other_topic');
SELECT * FROM broadcast.record_events('ses', 'esp', :'sns_subscription_other');
SELECT * FROM evt.audience('ses') WHERE email = 'dave@example.com';
-- older than broadcast_engine.sns_max_age (the fixtures are from 2023): refused, confirmations too
SET broadcast_engine.sns_max_age = '1h';
SELECT * FROM broadcast.record_events('ses', 'esp', :'sns_delivery');
SELECT * FROM broadcast.record_events('ses', 'esp', :'sns_subscription');
-- a recent message passes; one from the future (beyond webhook_tolerance) does not
SET broadcast_engine.webhook_tolerance = '5min';
SELECT broadcast._check_sns_origin(jsonb_build_object('TopicArn', 'arn:aws:sns:us-east-1:123456789012:ses-events',
	'Timestamp', to_char(now() AT TIME ZONE 'UTC' - interval '10 minutes', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
	'arn:aws:sns:us-east-1:123456789012:ses-events');
\set VERBOSITY terse
SELECT broadcast._check_sns_origin(jsonb_build_object('TopicArn', 'arn:aws:sns:us-east-1:123456789012:ses-events',
	'Timestamp', to_char(now() AT TIME ZONE 'UTC' + interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
	'arn:aws:sns:us-east-1:123456789012:ses-events');
\set VERBOSITY default
SELECT broadcast._check_sns_origin(jsonb_build_object('TopicArn', 'arn:aws:sns:us-east-1:123456789012:ses-events',
	'Timestamp', '2015-13-45T00:00:00.000Z'), 'arn:aws:sns:us-east-1:123456789012:ses-events');
SET broadcast_engine.webhook_tolerance = 0;
SET broadcast_engine.sns_max_age = 0;

-- ------------------------------------------------------------------------
-- SparkPost: a batch of message, track and unsubscribe events
-- ------------------------------------------------------------------------
SELECT evt.setup('sp', 'sparkpost', '{}', 400, ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]);
SELECT * FROM broadcast.record_events('sp', 'esp', :'sparkpost');
SELECT * FROM evt.history('sp');
SELECT * FROM evt.audience('sp');

-- ------------------------------------------------------------------------
-- Mailjet: grouped events, CustomID carries our id
-- ------------------------------------------------------------------------
SELECT evt.setup('mj', 'mailjet', '{"api_key": "public"}', 500, ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]);
SELECT * FROM broadcast.record_events('mj', 'esp', :'mailjet');
SELECT * FROM evt.history('mj');
SELECT * FROM evt.audience('mj');

-- ------------------------------------------------------------------------
-- Resend: Svix signatures over the raw body, in headers
-- ------------------------------------------------------------------------
SELECT evt.setup('rs', 'resend', '{}', 600, ARRAY[NULL, '56761188-7520-42d8-8898-ff6fc54ce602', NULL, NULL, NULL, NULL]);
SELECT broadcast.set_webhook_secret('rs', 'esp', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT broadcast.set_webhook_secret('rs', 'esp', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
-- the example from Svix's documentation verifies
SELECT broadcast._verify_svix('{"test": 2432232314}',
	'{"svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "svix-timestamp": "1614265330",
	  "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT received, applied, changed, suppressed FROM broadcast.record_webhook('rs', 'esp', :'resend', :'resend_headers');
SELECT received, applied, changed, suppressed FROM broadcast.record_webhook('rs', 'esp', :'resend_open', :'resend_open_headers');
SELECT * FROM evt.history('rs');
SELECT * FROM evt.audience('rs');
-- the same JSON re-serialised is not what was signed; jsonb alone cannot be verified
SELECT * FROM broadcast.record_webhook('rs', 'esp', :'resend'::jsonb::text, :'resend_headers');
SELECT * FROM broadcast.record_events('rs', 'esp', :'resend', :'resend_headers');
SELECT * FROM broadcast.record_webhook('rs', 'esp', :'resend', '{}');
SELECT * FROM broadcast.record_webhook('rs', 'esp', 'not json', :'resend_headers');

-- ------------------------------------------------------------------------
-- The generic form (SMTP setups): out of order, soft bounce threshold
-- ------------------------------------------------------------------------
SELECT evt.setup('gen', 'smtp', '{"host": "localhost"}', 800, ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]);
SELECT * FROM broadcast.record_events('gen', 'esp', format($$[
	{"message_id": "%s", "event": "clicked", "timestamp": "2023-11-14T22:20:00Z"},
	{"message_id": "%s", "event": "opened", "timestamp": 1700000500},
	{"message_id": "%s", "event": "opened", "timestamp": "2023-11-14 22:15:00"},
	{"message_id": "%s", "event": "delivered"},
	{"message_id": "%s", "event": "bounced", "bounce_type": "soft", "detail": "452 mailbox full"},
	{"message_id": "%s", "event": "deferred"}]$$,
	evt.mid(801), evt.mid(801), evt.mid(801), evt.mid(801), evt.mid(802), evt.mid(802))::jsonb);
SELECT email, opened, clicked, bounce_type FROM evt.history('gen') WHERE email IN ('alice@example.com', 'bob@example.com');
-- bob's soft bounces: 3 messages (the default threshold) suppress him; replays count once
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, status, sent_at)
SELECT 'gen', evt.mid(n), 'b2', 't', 'news', 'bob@example.com', 'esp', 'sent', now() FROM generate_series(811, 812) n;
SELECT suppressed FROM broadcast.record_events('gen', 'esp',
	format('{"events": [{"message_id": "%s", "event": "bounced", "bounce_type": "soft"}]}', evt.mid(802))::jsonb);
SELECT suppressed FROM broadcast.record_events('gen', 'esp',
	format('{"events": [{"message_id": "%s", "event": "bounced", "bounce_type": "soft"}]}', evt.mid(811))::jsonb);
SELECT count(*) AS soft_bounces FROM broadcast.soft_bounces WHERE workspace_id = 'gen';
SELECT * FROM evt.audience('gen') WHERE email = 'bob@example.com';
SELECT suppressed FROM broadcast.record_events('gen', 'esp',
	format('{"events": [{"message_id": "%s", "event": "bounced", "bounce_type": "soft"}]}', evt.mid(812))::jsonb);
SELECT * FROM evt.audience('gen') WHERE email = 'bob@example.com';
-- a hard bounce on an address already bounced soft makes it hard
SELECT changed FROM broadcast.record_events('gen', 'esp',
	format('[{"message_id": "%s", "event": "bounced"}]', evt.mid(802))::jsonb);
SELECT bounce_type FROM broadcast.message_history WHERE workspace_id = 'gen' AND message_id = evt.mid(802);
-- bad generic events are refused with their position, and nothing is written
SELECT * FROM broadcast.record_events('gen', 'esp', '[{"message_id": "00000000-0000-4000-8000-000000000803", "event": "delivered"}, {"event": "exploded", "message_id": "00000000-0000-4000-8000-000000000803"}]');
SELECT * FROM broadcast.record_events('gen', 'esp', '[{"message_id": "not-a-uuid", "event": "opened"}]');
SELECT * FROM broadcast.record_events('gen', 'esp', '[{"event": "opened"}]');
SELECT * FROM broadcast.record_events('gen', 'esp', '[{"message_id": "00000000-0000-4000-8000-000000000803", "event": "bounced", "bounce_type": "medium"}]');
SELECT * FROM broadcast.record_events('gen', 'esp', '[{"message_id": "00000000-0000-4000-8000-000000000803", "event": "opened", "timestamp": "yesterday"}]');
SELECT * FROM broadcast.record_events('gen', 'esp', '"hello"');
SELECT delivered_at FROM broadcast.message_history WHERE workspace_id = 'gen' AND message_id = evt.mid(803);
SELECT * FROM broadcast.record_events('gen', 'esp', NULL);
SELECT * FROM broadcast.record_events('gen', 'nope', '[]');
SELECT * FROM broadcast.record_events('nope', 'esp', '[]');
SELECT * FROM broadcast.record_events('gen', 'esp', '[]', '"headers"');
SELECT * FROM broadcast.record_events('gen', 'esp', '[]');

-- ------------------------------------------------------------------------
-- After a hard bounce or complaint, a new broadcast skips the address and
-- its queued rows are dropped
-- ------------------------------------------------------------------------
SELECT broadcast.create_workspace('sup', 'Suppression', 'UTC', '{"default_from_email": "news@sup.test"}');
SELECT broadcast.create_list('sup', 'l', 'L');
SELECT broadcast.subscribe('sup', 'l', ARRAY['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']);
SELECT broadcast.create_template('sup', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_integration('sup', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 9}');
SELECT broadcast.create_broadcast('sup', 'first', 'First', '{l}', 'smtp', 't');
SELECT broadcast.schedule_broadcast('sup', 'first', now() + interval '1 hour') IS NOT NULL;
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'sup';
CALL broadcast.run_tasks(5);
SELECT email FROM broadcast.email_queue WHERE workspace_id = 'sup' ORDER BY email;
-- a and b were mailed before (another broadcast); b bounces hard, c complains
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, status, sent_at)
VALUES ('sup', evt.mid(901), 'old', 't', 'l', 'b@example.com', 'smtp', 'sent', now()),
	   ('sup', evt.mid(902), 'old', 't', 'l', 'c@example.com', 'smtp', 'sent', now());
SELECT suppressed FROM broadcast.record_events('sup', 'smtp', format('[
	{"message_id": "%s", "event": "bounced", "bounce_type": "hard", "detail": "550 5.1.1 no such user"},
	{"message_id": "%s", "event": "complained"}]', evt.mid(901), evt.mid(902))::jsonb);
SELECT email FROM broadcast.email_queue WHERE workspace_id = 'sup' ORDER BY email;
SELECT email, reason, detail FROM broadcast.suppressions WHERE workspace_id = 'sup' ORDER BY email;
SELECT broadcast.create_broadcast('sup', 'second', 'Second', '{l}', 'smtp', 't');
SELECT broadcast.schedule_broadcast('sup', 'second', now() + interval '1 hour') IS NOT NULL;
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'sup' AND broadcast_id = 'second';
CALL broadcast.run_tasks(5);
SELECT broadcast_id, email FROM broadcast.email_queue WHERE workspace_id = 'sup' ORDER BY 1, 2;
SELECT total_recipients FROM broadcast.broadcasts WHERE workspace_id = 'sup' AND broadcast_id = 'second';
-- a suppression inserted directly (as a workspace role may) drops queued rows too,
-- except a row a sender holds in flight (d's, leased here)
UPDATE broadcast.email_queue SET lease_until = now() + interval '1 minute'
 WHERE workspace_id = 'sup' AND email = 'd@example.com';
INSERT INTO broadcast.suppressions (workspace_id, email, reason)
VALUES ('sup', 'a@example.com', 'manual'), ('sup', 'd@example.com', 'manual');
SELECT broadcast_id, email, lease_until IS NOT NULL AS in_flight FROM broadcast.email_queue
 WHERE workspace_id = 'sup' ORDER BY 1, 2;

-- ------------------------------------------------------------------------
-- One-click unsubscribe: the token from the List-Unsubscribe URL
-- ------------------------------------------------------------------------
SELECT broadcast.create_workspace('un', 'Unsub', 'UTC', '{"unsubscribe_base_url": "https://u.example.com/u"}');
SELECT broadcast.create_workspace('un2', 'Other', 'UTC', '{"unsubscribe_base_url": "https://u.example.com/u"}');
SELECT broadcast.create_list('un', 'news', 'News');
SELECT broadcast.create_list('un', 'promo', 'Promo');
SELECT broadcast.subscribe('un', 'news', ARRAY['x@example.com', 'y@example.com']);
SELECT broadcast.subscribe('un', 'promo', ARRAY['x@example.com', 'y@example.com']);
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email, status, sent_at)
VALUES ('un', evt.mid(1001), 'b', 't', 'news', 'x@example.com', 'sent', now());
SELECT substr(broadcast.unsubscribe_url('un', 'x@example.com', 'news', evt.mid(1001)), 25) AS tok \gset
SELECT substr(broadcast.unsubscribe_url('un', 'y@example.com'), 25) AS global_tok \gset
SELECT * FROM broadcast.unsubscribe(:'tok');
SELECT * FROM broadcast.unsubscribe(:'tok');
SELECT unsubscribed_at IS NOT NULL AS recorded FROM broadcast.message_history
 WHERE workspace_id = 'un' AND message_id = evt.mid(1001);
SELECT * FROM broadcast.unsubscribe(:'global_tok');
SELECT * FROM evt.audience('un');
-- tampered, truncated, empty, and signed with another workspace's secret
SELECT * FROM broadcast.unsubscribe(overlay(:'tok' placing CASE WHEN substr(:'tok', 5, 1) = 'A' THEN 'B' ELSE 'A' END from 5 for 1));
SELECT * FROM broadcast.unsubscribe(overlay(:'tok' placing CASE WHEN substr(:'tok', length(:'tok') - 5, 1) = 'A' THEN 'B' ELSE 'A' END from length(:'tok') - 5 for 1));
SELECT * FROM broadcast.unsubscribe(left(:'tok', -3));
SELECT * FROM broadcast.unsubscribe('');
SELECT * FROM broadcast.unsubscribe(broadcast._unsub_token_make(
	(SELECT unsubscribe_secret FROM broadcast.workspace_secrets WHERE workspace_id = 'un2'),
	'un', 'news', 'y@example.com', ''));
SELECT * FROM broadcast.unsubscribe(broadcast._unsub_token_make(
	(SELECT unsubscribe_secret FROM broadcast.workspace_secrets WHERE workspace_id = 'un2'),
	'nowhere', 'news', 'y@example.com', ''));

-- ------------------------------------------------------------------------
-- Access: a web front role, a workspace role, an outsider
-- ------------------------------------------------------------------------
CREATE ROLE ev_front LOGIN IN ROLE broadcast_webhook;
CREATE ROLE ev_member LOGIN;
CREATE ROLE ev_outsider LOGIN;
SELECT broadcast.grant_workspace('gen', 'ev_member');
SELECT broadcast.grant_workspace('un2', 'ev_outsider');
\c - ev_front
SELECT received, applied FROM broadcast.record_events('gen', 'esp', format('[{"message_id": "%s", "event": "opened"}]', evt.mid(803))::jsonb);
SELECT * FROM broadcast.message_history LIMIT 1;
SELECT broadcast.set_webhook_secret('mg', 'esp', 'k');
\c - ev_member
SELECT received, applied FROM broadcast.record_events('gen', 'esp', format('[{"message_id": "%s", "event": "clicked"}]', evt.mid(803))::jsonb);
SELECT * FROM broadcast.record_events('sg', 'esp', '[]');
SELECT * FROM broadcast._apply_events('gen', 'esp', '{}');
\c - ev_outsider
SELECT * FROM broadcast.record_events('gen', 'esp', '[]');
\c - postgres
SET client_min_messages = warning;
SELECT opened_at IS NOT NULL AS opened, clicked_at IS NOT NULL AS clicked
  FROM broadcast.message_history WHERE workspace_id = 'gen' AND message_id = evt.mid(803);

-- ------------------------------------------------------------------------
-- Stats: per broadcast and per variation, rates over delivered
-- ------------------------------------------------------------------------
-- these history rows were written here, not by a sender: their broadcasts' ranges on request
SELECT w, broadcast.refresh_broadcast_ranges(w) FROM unnest(ARRAY['sg', 'gen']) w;
SELECT * FROM broadcast.broadcast_stats('sg', 'b');
UPDATE broadcast.broadcasts SET template_id = NULL, variations = '{t,u}', ab_sample_percent = 50
 WHERE workspace_id = 'gen' AND broadcast_id = 'b';
SELECT broadcast.create_template('gen', 't', 'T', '<p>t</p>', from_email => 'a@gen.test');
SELECT broadcast.create_template('gen', 'u', 'U', '<p>u</p>', from_email => 'a@gen.test');
INSERT INTO broadcast.broadcast_variations VALUES ('gen', 'b', 0, 't', 1), ('gen', 'b', 1, 'u', 1);
SELECT variation, template_id, winner, sent, delivered, opened, clicked, bounced, open_rate, click_rate, bounce_rate
  FROM broadcast.variation_stats WHERE workspace_id = 'gen' AND broadcast_id = 'b' ORDER BY variation;

-- ------------------------------------------------------------------------
-- A/B: the winner comes from the opens recorded through record_events,
-- over delivered messages (red: 3 opens of 10 delivered; blue: 2 opens of
-- the 4 of its 10 that the provider reported delivered), and the
-- remainder goes out with it
-- ------------------------------------------------------------------------
SELECT broadcast.create_workspace('ab', 'AB', 'UTC', '{"default_from_email": "news@ab.test"}');
SELECT broadcast.create_template('ab', 'red', 'Red', '<p>red</p>'), broadcast.create_template('ab', 'blue', 'Blue', '<p>blue</p>');
SELECT broadcast.create_integration('ab', 'smtp', 'smtp', '{"host": "localhost"}');
SELECT broadcast.create_list('ab', 'l', 'L');
SELECT broadcast.subscribe('ab', 'l', ARRAY(SELECT format('p%s@example.com', lpad(n::text, 3, '0')) FROM generate_series(1, 100) n));
SELECT broadcast.create_broadcast('ab', 'ab', 'A/B', '{l}', 'smtp', variations => ARRAY['red', 'blue'],
	ab_sample_percent => 20, ab_metric => 'open', ab_duration => '10 milliseconds');
SELECT broadcast.schedule_broadcast('ab', 'ab') IS NOT NULL;
CALL broadcast.run_tasks(10);
SELECT variation, count(*) FROM broadcast.email_queue WHERE workspace_id = 'ab' GROUP BY 1 ORDER BY 1;
-- the sender's batch: history rows for the test sample, queue rows gone
WITH sent AS (
	DELETE FROM broadcast.email_queue q WHERE q.workspace_id = 'ab' RETURNING q.*
)
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, variation, list_id, email,
	integration_id, provider, status, sent_at)
SELECT s.workspace_id, s.message_id, s.broadcast_id, CASE s.variation WHEN 0 THEN 'red' ELSE 'blue' END, s.variation,
	   s.list_id, s.email, 'smtp', 'smtp', 'sent', now()
  FROM sent s;
-- (a sender widens the broadcast's message id range as it records: this test writes the rows itself)
SELECT broadcast.refresh_broadcast_ranges('ab') AS ranges;
SELECT * FROM broadcast.record_events('ab', 'smtp', (
	SELECT jsonb_agg(jsonb_build_object('message_id', h.message_id, 'event', e.event))
	  FROM (SELECT h.*, row_number() OVER (PARTITION BY h.variation ORDER BY h.email) AS rn
			  FROM broadcast.message_history h WHERE h.workspace_id = 'ab') h
	  JOIN (VALUES (0, 'delivered', 10), (0, 'opened', 3), (1, 'delivered', 4), (1, 'opened', 2)) e(variation, event, upto)
		ON e.variation = h.variation AND h.rn <= e.upto));
SELECT variation, template_id, sent, delivered, opened, open_rate FROM broadcast.variation_stats
 WHERE workspace_id = 'ab' AND broadcast_id = 'ab' ORDER BY variation;
UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'ab';
CALL broadcast.run_tasks(5);
SELECT pg_sleep(0.05);
CALL broadcast.run_tasks(10);
SELECT status, winner_template_id FROM broadcast.broadcasts WHERE workspace_id = 'ab';
SELECT variation, count(*) FROM broadcast.email_queue WHERE workspace_id = 'ab' GROUP BY 1 ORDER BY 1;
SELECT variation, template_id, winner FROM broadcast.variation_stats WHERE workspace_id = 'ab' ORDER BY variation;

-- ------------------------------------------------------------------------
-- Events that carry only the provider's id, before their history row: kept
-- while the address's queue row is in a sender's hands, applied by the
-- trigger when the batch commits; other software's events stay unknown
-- ------------------------------------------------------------------------
INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status)
VALUES ('gen', 'inflight', 'F', '{news}', 'esp', 't', 'processing');
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id, lease_until)
VALUES ('gen', 'inflight', 'bob@example.com', 'esp', 'news', evt.mid(20001), now() + interval '1 minute');
\set pid_events '{"events": [{"provider_message_id": "q-777", "email": "Bob@example.com", "event": "delivered", "timestamp": 1700000100}, {"provider_message_id": "q-777", "email": "bob@example.com", "event": "opened", "timestamp": 1700000200}, {"provider_message_id": "q-888", "email": "stranger@example.com", "event": "delivered", "timestamp": 1700000100}]}'
SELECT received, applied, pending, unknown FROM broadcast.record_events('gen', 'esp', :'pid_events');
-- a replay parks nothing new
SELECT received, applied, pending, unknown FROM broadcast.record_events('gen', 'esp', :'pid_events');
SELECT message_id, provider_message_id, email, event, occurred_at FROM broadcast.pending_events
 WHERE workspace_id = 'gen' ORDER BY occurred_at;
-- the sender's batch: the history row with the provider's id, the queue row gone
WITH sent AS (
	DELETE FROM broadcast.email_queue q WHERE q.workspace_id = 'gen' AND q.broadcast_id = 'inflight' RETURNING q.*
)
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, provider_message_id, status, sent_at)
SELECT s.workspace_id, s.message_id, s.broadcast_id, 't', s.list_id, s.email, 'esp', 'smtp', 'q-777', 'sent', now()
  FROM sent s;
SELECT email, delivered_at, opened_at FROM broadcast.message_history
 WHERE workspace_id = 'gen' AND broadcast_id = 'inflight';
SELECT count(*) AS still_pending FROM broadcast.pending_events WHERE workspace_id = 'gen';
-- without a queue row in flight, the same events are unknown
SELECT received, applied, pending, unknown FROM broadcast.record_events('gen', 'esp',
	'{"events": [{"provider_message_id": "q-999", "email": "bob@example.com", "event": "delivered"}]}');
-- a provider's id without the recipient is refused: a batch's recipients share one id
SELECT * FROM broadcast.record_events('gen', 'esp',
	'{"events": [{"provider_message_id": "q-777", "event": "opened"}]}');
UPDATE broadcast.broadcasts SET status = 'completed' WHERE workspace_id = 'gen' AND broadcast_id = 'inflight';

-- ------------------------------------------------------------------------
-- Events apply only to messages of the integration they arrive for: a
-- workspace's unsigned integration cannot reach its signed one's messages
-- ------------------------------------------------------------------------
SELECT broadcast.create_integration('mg', 'relay', 'smtp', '{"host": "localhost"}');
-- erin's and frank's messages went out through the signed Mailgun integration
SELECT received, applied, pending, unknown, suppressed FROM broadcast.record_events('mg', 'relay',
	format('[{"message_id": "%s", "event": "complained"}, {"message_id": "%s", "event": "opened"}]',
		   evt.mid(205), evt.mid(206))::jsonb);
SELECT received, applied, pending, unknown FROM broadcast.record_events('mg', 'relay',
	'[{"provider_message_id": "20231114.201@mg.example.com", "email": "alice@example.com", "event": "bounced"}]');
SELECT * FROM evt.history('mg') WHERE email IN ('alice@example.com', 'erin@example.com', 'frank@example.com');
SELECT * FROM evt.audience('mg') WHERE email IN ('alice@example.com', 'erin@example.com', 'frank@example.com');
-- parked through one integration, never applied to another's message
SELECT received, pending FROM broadcast.record_events('mg', 'relay',
	format('[{"message_id": "%s", "event": "complained"}]', evt.mid(250))::jsonb);
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('mg', evt.mid(250), 'b', 't', 'news', 'gina@example.com', 'esp', 'mailgun', 'sent', now());
SELECT * FROM broadcast.apply_pending_events();
SELECT complained_at FROM broadcast.message_history WHERE workspace_id = 'mg' AND message_id = evt.mid(250);
SELECT integration_id, count(*) FROM broadcast.pending_events WHERE workspace_id = 'mg' GROUP BY 1;
-- through its own integration it applies
SET broadcast_engine.webhook_tolerance = 0;
SELECT received, applied, changed FROM broadcast.record_events('mg', 'esp',
	jsonb_build_object('signature', :'mg_delivered'::jsonb->'signature',
					   'event-data', jsonb_build_object('event', 'opened', 'timestamp', 1700000100,
						   'recipient', 'frank@example.com', 'user-variables', jsonb_build_object('message_id', evt.mid(206)))));
SELECT email, opened FROM evt.history('mg') WHERE email = 'frank@example.com';

-- ------------------------------------------------------------------------
-- Parked events are bounded per workspace (broadcast_engine.pending_events_limit)
-- and expire (broadcast_engine.pending_events_max_age)
-- ------------------------------------------------------------------------
SELECT evt.setup('flood', 'smtp', '{"host": "localhost"}', 1000, ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]);
SHOW broadcast_engine.pending_events_limit;
SHOW broadcast_engine.pending_events_max_age;
SET broadcast_engine.pending_events_limit = 5;
-- twenty random message ids: five are parked, fifteen dropped with a warning and counted
SELECT received, applied, pending, unknown FROM broadcast.record_events('flood', 'esp',
	(SELECT jsonb_agg(jsonb_build_object('message_id', ('00000000-0000-4000-9000-' || lpad(n::text, 12, '0')),
										 'event', 'delivered', 'timestamp', 1700000000))
	   FROM generate_series(1, 20) n));
SELECT count(*) AS parked FROM broadcast.pending_events WHERE workspace_id = 'flood';
SELECT dropped FROM broadcast.pending_events_dropped WHERE workspace_id = 'flood';
-- a replay of parked events takes no room and drops nothing
SELECT received, pending, unknown FROM broadcast.record_events('flood', 'esp',
	(SELECT jsonb_agg(jsonb_build_object('message_id', ('00000000-0000-4000-9000-' || lpad(n::text, 12, '0')),
										 'event', 'delivered', 'timestamp', 1700000000))
	   FROM generate_series(1, 5) n));
-- real events of sent messages are applied whatever is parked
SELECT received, applied FROM broadcast.record_events('flood', 'esp',
	format('[{"message_id": "%s", "event": "delivered"}]', evt.mid(1001))::jsonb);
-- expired rows make room
UPDATE broadcast.pending_events SET received_at = now() - interval '2 days' WHERE workspace_id = 'flood';
SELECT received, pending, unknown FROM broadcast.record_events('flood', 'esp',
	'[{"message_id": "00000000-0000-4000-9000-000000000099", "event": "opened"}]');
SELECT count(*) AS parked FROM broadcast.pending_events WHERE workspace_id = 'flood';
-- the bound is the superuser's: out of range values are refused
SET broadcast_engine.pending_events_limit = -1;
SET broadcast_engine.pending_events_limit = 100000000;
RESET broadcast_engine.pending_events_limit;

-- ------------------------------------------------------------------------
-- Pending events expire; a payload of 1,000 events is a handful of statements
-- ------------------------------------------------------------------------
SELECT * FROM broadcast.apply_pending_events('0 seconds');
SELECT count(*) FROM broadcast.pending_events;
SELECT * FROM broadcast.apply_pending_events(NULL);
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, status, sent_at)
SELECT 'gen', evt.mid(10000 + n), 'big', 't', 'news', 'alice@example.com', 'esp', 'sent', now()
  FROM generate_series(1, 1000) n;
SELECT received, applied, changed FROM broadcast.record_events('gen', 'esp',
	(SELECT jsonb_agg(jsonb_build_object('message_id', evt.mid(10000 + n), 'event', e, 'timestamp', 1700000000 + n))
	   FROM generate_series(1, 1000) n, unnest(ARRAY['delivered', 'opened']) e));
SELECT received, applied, changed FROM broadcast.record_events('gen', 'esp',
	(SELECT jsonb_agg(jsonb_build_object('message_id', evt.mid(10000 + n), 'event', e, 'timestamp', 1700000000 + n))
	   FROM generate_series(1, 1000) n, unnest(ARRAY['delivered', 'opened']) e));

SELECT broadcast.drop_workspace(w) FROM unnest(ARRAY['sg', 'mg', 'pm', 'ses', 'sp', 'mj', 'rs', 'gen', 'sup', 'un', 'un2', 'ab', 'flood']) w;
DROP ROLE ev_front, ev_member, ev_outsider;
DROP SCHEMA evt CASCADE;
