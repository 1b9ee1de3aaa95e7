-- The SQL API's normal paths.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

SELECT broadcast.create_workspace('acme', 'Acme Newsletters', 'Europe/Paris',
	'{"sending_domain": "news.acme.test", "unsubscribe_base_url": "https://acme.test/u"}');
SELECT workspace_id, name, timezone, settings FROM broadcast.workspaces WHERE workspace_id = 'acme';
-- a 32-byte unsubscribe secret is generated at creation
SELECT length(unsubscribe_secret) AS secret_bytes FROM broadcast.workspace_secrets WHERE workspace_id = 'acme';

-- contacts: emails are normalised, the last duplicate in a payload wins, properties merge
SELECT broadcast.upsert_contacts('acme', '[
	{"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace", "language": "en",
	 "timezone": "Europe/London", "properties": {"plan": "pro", "score": 7}},
	{"email": "grace@example.com", "first_name": "Grace"},
	{"email": "alan@example.com", "first_name": "Alan", "properties": null},
	{"email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper"}
]');
SELECT email, first_name, last_name, language, timezone, properties
  FROM broadcast.contacts WHERE workspace_id = 'acme' ORDER BY email;
SELECT broadcast.upsert_contacts('acme', '[{"email": "ada@example.com", "properties": {"score": 9, "city": "London"}}]');
SELECT email, first_name, properties FROM broadcast.contacts
 WHERE workspace_id = 'acme' AND email = 'ada@example.com';
SELECT broadcast.upsert_contacts('acme', '[]');

-- lists and subscriptions
SELECT broadcast.create_list('acme', 'weekly', 'Weekly digest');
SELECT broadcast.create_list('acme', 'product', 'Product news');
SELECT broadcast.subscribe('acme', 'weekly', ARRAY['ada@example.com', 'grace@example.com', 'New@Example.com']);
-- subscribing twice changes nothing
SELECT broadcast.subscribe('acme', 'weekly', ARRAY['ada@example.com']);
SELECT broadcast.subscribe('acme', 'product', ARRAY['alan@example.com', 'ada@example.com'], 'pending');
SELECT list_id, email, status FROM broadcast.list_members WHERE workspace_id = 'acme' ORDER BY 1, 2;
-- subscribe created the contact it did not know
SELECT email FROM broadcast.contacts WHERE workspace_id = 'acme' AND email = 'new@example.com';

-- unsubscribe from one list, then globally
SELECT broadcast.unsubscribe_contact('acme', 'grace@example.com', 'weekly');
SELECT broadcast.unsubscribe_contact('acme', 'Alan@example.com');
SELECT list_id, email, status FROM broadcast.list_members WHERE workspace_id = 'acme' ORDER BY 1, 2;
SELECT email, reason FROM broadcast.suppressions WHERE workspace_id = 'acme';

-- templates: each call adds an immutable version
SELECT broadcast.create_template('acme', 'welcome', 'Hello {{ contact.first_name }}',
	'<p>Hi {{ contact.first_name | default: "there" }}</p>', from_email => 'News@Acme.test', from_name => 'Acme');
SELECT broadcast.create_template('acme', 'welcome', 'Hello again', '<p>v2</p>', text_body => 'v2',
	reply_to => 'help@acme.test');
SELECT broadcast.create_template('acme', 'promo', 'Promo', '<p>promo</p>');
SELECT template_id, version, subject, text_body, from_email, from_name, reply_to
  FROM broadcast.templates WHERE workspace_id = 'acme' ORDER BY 1, 2;

-- integrations: secrets are stored apart and never shown in the overview
SELECT broadcast.create_integration('acme', 'mail', 'smtp',
	'{"host": "127.0.0.1", "port": 2525, "tls": "none", "username": "u", "ehlo_name": "acme.test"}', 'pw', 50);
SELECT broadcast.create_integration('acme', 'sg', 'sendgrid', '{"endpoint": "http://127.0.0.1:9/"}', 'SG.key');
SELECT broadcast.create_integration('acme', 'mg', 'mailgun', '{"domain": "mg.acme.test", "region": "eu"}', 'key-1');
SELECT broadcast.create_integration('acme', 'pm', 'postmark', '{"message_stream": "broadcast"}', 'tok');
SELECT broadcast.create_integration('acme', 'ses', 'ses', '{"region": "eu-west-1", "access_key_id": "AKIA1"}', 'sk');
SELECT broadcast.create_integration('acme', 'sp', 'sparkpost', '{"region": "eu"}', 'k');
SELECT broadcast.create_integration('acme', 'mj', 'mailjet', '{"api_key": "pub"}', 'priv');
SELECT broadcast.create_integration('acme', 'rs', 'resend', '{}', 're_key');
SELECT integration_id, provider, config, rate_per_second, has_secret
  FROM broadcast.integrations_overview WHERE workspace_id = 'acme' ORDER BY 1;
SELECT integration_id, secret FROM broadcast.integration_secrets WHERE workspace_id = 'acme' ORDER BY 1;

-- a platform account shared by workspaces, with its own account-wide limit
SELECT broadcast.create_workspace('beta', 'Beta');
SELECT broadcast.create_shared_integration('platform-sg', 'sendgrid', '{}', 'SG.platform', 1000);
SELECT broadcast.attach_shared_integration('acme', 'platform', 'platform-sg', 100);
SELECT broadcast.attach_shared_integration('beta', 'platform', 'platform-sg');
SELECT workspace_id, integration_id, provider, config, rate_per_second, shared_id, has_secret
  FROM broadcast.integrations_overview WHERE integration_id = 'platform' ORDER BY 1;

-- broadcasts
SELECT broadcast.create_broadcast('acme', 'nov', 'November digest', ARRAY['weekly', 'product', 'weekly'], 'mail',
	template_id => 'welcome');
SELECT broadcast.create_broadcast('acme', 'ab', 'Subject test', ARRAY['weekly'], 'sg',
	variations => ARRAY['welcome', 'promo'], ab_sample_percent => 20, ab_metric => 'click',
	ab_duration => '2 hours', exclude_lists => ARRAY['product']);
SELECT broadcast_id, name, lists, exclude_lists, integration_id, template_id, variations,
	   ab_sample_percent, ab_metric, ab_duration, ab_auto, status
  FROM broadcast.broadcasts WHERE workspace_id = 'acme' ORDER BY 1;
SELECT broadcast.update_broadcast('acme', 'nov', name => 'November news', lists => ARRAY['weekly']);
SELECT name, lists, template_id FROM broadcast.broadcasts WHERE workspace_id = 'acme' AND broadcast_id = 'nov';
-- switching an A/B test to a single template drops the A/B settings
SELECT broadcast.update_broadcast('acme', 'ab', template_id => 'promo');
SELECT template_id, variations, ab_sample_percent FROM broadcast.broadcasts
 WHERE workspace_id = 'acme' AND broadcast_id = 'ab';
SELECT broadcast.update_broadcast('acme', 'ab', variations => ARRAY['welcome', 'promo'], ab_sample_percent => 10);
SELECT template_id, variations, ab_sample_percent FROM broadcast.broadcasts
 WHERE workspace_id = 'acme' AND broadcast_id = 'ab';

-- dropping a workspace removes everything in it
SELECT broadcast.drop_workspace('acme');
SELECT broadcast.drop_workspace('beta');
SELECT (SELECT count(*) FROM broadcast.contacts WHERE workspace_id = 'acme') AS contacts,
	   (SELECT count(*) FROM broadcast.broadcasts WHERE workspace_id = 'acme') AS broadcasts,
	   (SELECT count(*) FROM broadcast.integration_secrets WHERE workspace_id = 'acme') AS secrets;
DELETE FROM broadcast.shared_integrations WHERE shared_id = 'platform-sg';
