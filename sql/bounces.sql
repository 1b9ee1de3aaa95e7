-- Bounces for SMTP senders (issue 15): VERP settings, and
-- record_bounce_message() with samples of test/unit/bounces.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never
\set VERBOSITY default

\set verp_dsn `cat test/unit/bounces/verp-postfix-userunknown.eml`
\set verp_arf `cat test/unit/bounces/verp-arf-complaint.eml`
\set foreign `cat test/unit/bounces/verp-foreign-token-base64.eml`
\set exim `cat test/unit/bounces/lhost-exim-02.eml`
\set rfc_arf `cat test/unit/bounces/rfc5965-b2-abuse.eml`

-- the corpus's VERP tokens are signed for workspace "acme" with a fixed secret
SELECT broadcast.create_workspace('acme', 'Acme', 'UTC', '{"sending_domain": "news.example.test"}');
UPDATE broadcast.workspace_secrets SET unsubscribe_secret = convert_to('0123456789abcdef0123456789abcdef', 'UTF8')
 WHERE workspace_id = 'acme';
SELECT broadcast.create_list('acme', 'l', 'Readers');

-- settings: off by default, checked when given
SELECT broadcast.create_integration('acme', 'plain', 'smtp', '{"host": "127.0.0.1"}');
SELECT broadcast.create_integration('acme', 'mail', 'smtp',
	'{"host": "127.0.0.1", "bounce_domain": "bounce.example.test", "bounce_local": "bounces"}');
SELECT broadcast.create_integration('acme', 'bad1', 'smtp', '{"host": "h", "bounce_domain": "not a domain"}');
SELECT broadcast.create_integration('acme', 'bad2', 'smtp', '{"host": "h", "bounce_domain": 5}');
SELECT broadcast.create_integration('acme', 'bad3', 'smtp', '{"host": "h", "bounce_local": "b"}');
SELECT broadcast.create_integration('acme', 'bad4', 'smtp', '{"host": "h", "bounce_domain": "b.example", "bounce_local": "Bounces+x"}');
SELECT broadcast.create_integration('acme', 'bad5', 'smtp', '{"host": "h", "bounce_domain": "b.example", "bounce_local": "a23456789012345678901"}');
SELECT broadcast.create_integration('acme', 'bad6', 'sendgrid', '{"bounce_domain": "b.example"}', 'SG.x');
SELECT broadcast.update_integration('acme', 'plain', config => '{"host": "127.0.0.1", "bounce_domain": "bounce.example.test"}');
SELECT integration_id FROM broadcast.integrations WHERE workspace_id = 'acme' ORDER BY 1;

-- messages as the sender records them
INSERT INTO broadcast.contacts (workspace_id, email) VALUES
	('acme', 'nobody@dead.example.test'), ('acme', 'reader@isp.example.net'), ('acme', 'full@example.org');
INSERT INTO broadcast.list_members (workspace_id, list_id, email)
SELECT 'acme', 'l', email FROM broadcast.contacts WHERE workspace_id = 'acme';
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('acme', '0190f3a1-7c2e-7b4d-9a11-3c5e7f901234', 'b', 't', 'l', 'nobody@dead.example.test', 'mail', 'smtp', 'sent', now()),
	   ('acme', '0190f3a1-7c2e-7b4d-9a11-3c5e7f905678', 'b', 't', 'l', 'reader@isp.example.net', 'mail', 'smtp', 'sent', now());

-- a Postfix DSN to the VERP address (token in upper case in To): hard, suppressed
SELECT * FROM broadcast.record_bounce_message('acme', convert_to(:'verp_dsn', 'UTF8'));
SELECT email, reason, detail FROM broadcast.suppressions WHERE workspace_id = 'acme' ORDER BY email;
SELECT email, status FROM broadcast.list_members WHERE workspace_id = 'acme' ORDER BY email;
SELECT bounce_type, bounced_at IS NOT NULL AS bounced FROM broadcast.message_history
 WHERE workspace_id = 'acme' AND message_id = '0190f3a1-7c2e-7b4d-9a11-3c5e7f901234';
-- the same message again: nothing more happens
SELECT kind, bounce_class, attributed_by, applied, suppressed
  FROM broadcast.record_bounce_message('acme', convert_to(:'verp_dsn', 'UTF8'));
SELECT count(*) FROM broadcast.suppressions WHERE workspace_id = 'acme';

-- an ARF complaint whose Original-Mail-From is the VERP address
SELECT * FROM broadcast.record_bounce_message('acme', convert_to(:'verp_arf', 'UTF8'));
SELECT email, reason FROM broadcast.suppressions WHERE workspace_id = 'acme' ORDER BY email;

-- a token signed for another workspace, and a Message-ID this workspace never sent: unattributed
SELECT kind, bounce_class, message_id, attributed_by, applied
  FROM broadcast.record_bounce_message('acme', convert_to(:'foreign', 'UTF8'));
-- the Message-ID of a message of ours, but sent to another address than the report names: unattributed
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('acme', '0190f3a1-7c2e-7b4d-9a11-3c5e7f909999', 'b', 't', 'l', 'other@example.org', 'mail', 'smtp', 'sent', now());
SELECT kind, bounce_class, message_id, attributed_by, applied
  FROM broadcast.record_bounce_message('acme', convert_to(:'foreign', 'UTF8'));
-- sent to the address the report names: attributed by the Message-ID, a soft bounce
UPDATE broadcast.message_history SET email = 'full@example.org'
 WHERE workspace_id = 'acme' AND message_id = '0190f3a1-7c2e-7b4d-9a11-3c5e7f909999';
SELECT kind, bounce_class, message_id, email, attributed_by, applied, suppressed
  FROM broadcast.record_bounce_message('acme', convert_to(:'foreign', 'UTF8'));
SELECT email, count(*) FROM broadcast.soft_bounces WHERE workspace_id = 'acme' GROUP BY email;
-- a message sent through an HTTP provider: its bounces come by signed webhook, never by Message-ID here
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('acme', '0190f3a1-7c2e-7b4d-9a11-3c5e7f90aaaa', 'b', 't', 'l', 'full@example.org', 'sg', 'sendgrid', 'sent', now());
SELECT kind, bounce_class, message_id, attributed_by, applied
  FROM broadcast.record_bounce_message('acme', convert_to(replace(:'foreign', '3c5e7f909999', '3c5e7f90aaaa'), 'UTF8'));

-- soft bounces of three messages reach the threshold (3) and suppress the address
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
SELECT 'acme', ('0190f3a1-7c2e-7b4d-9a11-3c5e7f90000' || n)::uuid, 'b' || n, 't', 'l', 'full@example.org',
	   'mail', 'smtp', 'sent', now()
  FROM generate_series(1, 2) n;
SELECT n, suppressed FROM generate_series(1, 2) n,
	LATERAL broadcast.record_bounce_message('acme', convert_to(replace(:'foreign',
		'3c5e7f909999', '3c5e7f90000' || n), 'UTF8'));
SELECT email, reason, detail FROM broadcast.suppressions WHERE workspace_id = 'acme' AND email = 'full@example.org';

-- someone else's bounce (Exim, a Message-ID we never sent), a complaint about a stranger's
-- message, and a message that is no bounce at all: counted, not errors
SELECT kind, bounce_class, email, attributed_by FROM broadcast.record_bounce_message('acme', convert_to(:'exim', 'UTF8'));
SELECT kind, bounce_class, email, attributed_by FROM broadcast.record_bounce_message('acme', convert_to(:'rfc_arf', 'UTF8'));
SELECT kind, bounce_class, attributed_by FROM broadcast.record_bounce_message('acme', convert_to('Subject: hello

just a note', 'UTF8'));
SELECT kind FROM broadcast.record_bounce_message('acme', '');
SELECT received, attributed, unattributed, last_unattributed_reason FROM broadcast.bounce_intake WHERE workspace_id = 'acme';

-- a bounce that overtakes the sender's record: found by its queue row, parked,
-- and applied when the history row is written
DELETE FROM broadcast.suppressions WHERE workspace_id = 'acme' AND email = 'nobody@dead.example.test';
UPDATE broadcast.list_members SET status = 'active' WHERE workspace_id = 'acme' AND email = 'nobody@dead.example.test';
DELETE FROM broadcast.message_history WHERE workspace_id = 'acme' AND message_id = '0190f3a1-7c2e-7b4d-9a11-3c5e7f901234';
SELECT broadcast.create_template('acme', 't', 'T', '<p>t</p>', from_email => 'news@example.test');
INSERT INTO broadcast.broadcasts (workspace_id, broadcast_id, name, lists, integration_id, template_id, status)
VALUES ('acme', 'inflight', 'F', '{l}', 'mail', 't', 'processing');
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id, lease_until)
VALUES ('acme', 'inflight', 'nobody@dead.example.test', 'mail', 'l', '0190f3a1-7c2e-7b4d-9a11-3c5e7f901234',
		now() + interval '1 minute');
SELECT kind, bounce_class, email, attributed_by, applied, pending, suppressed
  FROM broadcast.record_bounce_message('acme', convert_to(:'verp_dsn', 'UTF8'));
SELECT event, bounce_type, integration_id FROM broadcast.pending_events WHERE workspace_id = 'acme';
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
	integration_id, provider, status, sent_at)
VALUES ('acme', '0190f3a1-7c2e-7b4d-9a11-3c5e7f901234', 'inflight', 't', 'l', 'nobody@dead.example.test', 'mail',
		'smtp', 'sent', now());
SELECT count(*) AS still_parked FROM broadcast.pending_events WHERE workspace_id = 'acme';
SELECT email, reason FROM broadcast.suppressions WHERE workspace_id = 'acme' AND email = 'nobody@dead.example.test';

-- bounded input, NULL, unknown workspace
SELECT * FROM broadcast.record_bounce_message('acme', convert_to(repeat('x', 2097153), 'UTF8'));
SELECT * FROM broadcast.record_bounce_message('acme', NULL);
SELECT * FROM broadcast.record_bounce_message('nope', convert_to(:'verp_dsn', 'UTF8'));

-- a tenant without access to the workspace
CREATE ROLE bounce_tenant LOGIN IN ROLE broadcast_user;
SET ROLE bounce_tenant;
SELECT * FROM broadcast.record_bounce_message('acme', convert_to(:'verp_dsn', 'UTF8'));
SELECT * FROM broadcast._bounce_parse('x');
RESET ROLE;
DROP ROLE bounce_tenant;

-- leave no broadcast in flight for the suites after this one
SELECT broadcast.drop_workspace('acme');
SELECT count(*) AS left_behind FROM broadcast.bounce_intake WHERE workspace_id = 'acme';
