-- Liquid previews with any data (render_liquid) and time zones in dates.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never
\set VERBOSITY default

-- any template, any data
SELECT broadcast.render_liquid('Hi {{ contact.first_name | default: "friend" }}!', '{"contact": {"first_name": "Ann"}}');
SELECT broadcast.render_liquid('{% for i in (1..3) %}{{ i | times: 2 }}{% unless forloop.last %},{% endunless %}{% endfor %}');
SELECT broadcast.render_liquid('{{ x }}', NULL) IS NOT DISTINCT FROM '' AS null_data_is_empty;

-- the errors of saving: syntax (with position and hint), runtime, limits
SELECT broadcast.render_liquid(E'line one\n{{ contact.name | upcaes }}', '{}');
SELECT broadcast.render_liquid('{% if x %}open', '{}');
SELECT broadcast.render_liquid('{{ 1 | divided_by: 0 }}', '{}');
SELECT broadcast.render_liquid('{% for i in (1..200000) %}{% endfor %}', '{}');
SELECT broadcast.render_liquid(NULL, '{}');
SELECT broadcast.render_liquid(repeat('x', 524289), '{}');
SELECT broadcast.render_liquid('{{ x }}', '[1, 2]');
SELECT broadcast.render_liquid('{{ x }}', (repeat('{"a": ', 31) || '1' || repeat('}', 31))::jsonb);

-- time zones: the explicit argument, else contact.timezone, else workspace.timezone, else UTC
SELECT broadcast.render_liquid('{{ d | date: "%F %H:%M %Z %z" }}',
	'{"d": "2026-03-01T10:00:00Z"}') AS utc;
SELECT broadcast.render_liquid('{{ d | date: "%F %H:%M %Z %z" }}',
	'{"d": "2026-07-01T10:00:00Z", "workspace": {"timezone": "Europe/Paris"}}') AS workspace_summer;
SELECT broadcast.render_liquid('{{ d | date: "%F %H:%M %Z %z" }}',
	'{"d": "2026-03-01T10:00:00Z", "workspace": {"timezone": "Europe/Paris"}, "contact": {"timezone": "America/New_York"}}') AS contact_wins;
SELECT broadcast.render_liquid('{{ d | date: "%H:%M %Z", "Asia/Kolkata" }} {{ d | date: "%H:%M %Z", "-03:30" }}',
	'{"d": "2026-03-01T10:00:00Z", "contact": {"timezone": "America/New_York"}}') AS explicit;
SELECT broadcast.render_liquid('{{ d | date: "%H:%M", "Mars/Olympus" }}', '{"d": 0}');
SELECT broadcast.render_liquid('{{ d | date: "%H:%M" }}',
	'{"d": 0, "contact": {"timezone": "Mars/Olympus"}, "workspace": {"timezone": "Asia/Tokyo"}}') AS bad_contact_zone_falls_back;

-- a template's preview uses the contact's zone, else the workspace's
SELECT broadcast.create_workspace('snip', 'Snippets', 'Europe/Paris',
	'{"sending_domain": "news.snip.test", "unsubscribe_base_url": "https://snip.test/u/", "default_from_email": "news@snip.test"}');
SELECT broadcast.upsert_contacts('snip', '[
	{"email": "ny@example.com", "timezone": "America/New_York"},
	{"email": "paris@example.com"}]');
SELECT broadcast.create_template('snip', 'when', 'At {{ "2026-03-01T10:00:00Z" | date: "%H:%M %Z" }}', '<p/>');
SELECT subject FROM broadcast.render_template('snip', 'when', 1, 'ny@example.com');
SELECT subject FROM broadcast.render_template('snip', 'when', 1, 'paris@example.com');

-- snippets: saving a template that renders a missing one is an error naming it, nothing saved
SELECT broadcast.create_template('snip', 'news', 'News', E'<h1>News</h1>\n{% render ''footer'', who: contact.email %}');
SELECT broadcast.create_template('snip', 'news', 'News {% include "greeting" %}', '<p/>');
SELECT count(*) AS saved FROM broadcast.templates WHERE workspace_id = 'snip' AND template_id = 'news';
-- a snippet is a template of the same workspace (its html is the snippet)
SELECT broadcast.create_template('snip', 'footer', '(snippet)', '<small>v1 for {{ who }}</small>');
SELECT broadcast.create_template('snip', 'news', 'News', E'<h1>News</h1>\n{% render ''footer'', who: contact.email %}');
-- a template cannot render itself (it does not exist yet when first saved)
SELECT broadcast.create_template('snip', 'loop2', '(snippet)', '{% render ''loop2'' %}');
-- a cycle made by two saves is refused when a broadcast using it is scheduled
SELECT broadcast.create_template('snip', 'ca', '(snippet)', 'a');
SELECT broadcast.create_template('snip', 'cb', 'B', 'b{% render ''ca'' %}');
SELECT broadcast.create_template('snip', 'ca', '(snippet)', 'a{% include ''cb'' %}');
-- other workspaces' templates are not snippets
SELECT broadcast.create_workspace('snip2', 'Other');
SELECT broadcast.create_template('snip2', 'news', 'News', '{% render ''footer'' %}');

-- scheduling pins the snippet versions with the template; a later edit of the snippet changes nothing
SELECT broadcast.create_list('snip', 'all', 'Everyone');
SELECT broadcast.subscribe('snip', 'all', ARRAY['ny@example.com']);
SELECT broadcast.create_integration('snip', 'mail', 'smtp', '{"host": "127.0.0.1", "port": 2525}');
SELECT broadcast.create_broadcast('snip', 'b1', 'First', ARRAY['all'], 'mail', template_id => 'news');
SELECT broadcast.schedule_broadcast('snip', 'b1', now() + interval '1 day') IS NOT NULL AS scheduled;
SELECT broadcast.create_template('snip', 'footer', '(snippet)', '<small>v2 for {{ who }}</small>');
SELECT variation, template_id, version, snippets FROM broadcast.broadcast_variations
 WHERE workspace_id = 'snip' AND broadcast_id = 'b1';
SELECT broadcast.create_broadcast('snip', 'b2', 'Second', ARRAY['all'], 'mail', template_id => 'news');
SELECT broadcast.schedule_broadcast('snip', 'b2', now() + interval '1 day') IS NOT NULL AS scheduled;
SELECT broadcast_id, snippets FROM broadcast.broadcast_variations
 WHERE workspace_id = 'snip' ORDER BY broadcast_id;
SELECT broadcast.create_broadcast('snip', 'b3', 'Cycle', ARRAY['all'], 'mail', template_id => 'cb');
SELECT broadcast.schedule_broadcast('snip', 'b3', now() + interval '1 day') IS NOT NULL AS scheduled;
-- previews render the latest snippet versions
SELECT html FROM broadcast.render_template('snip', 'news', 1, 'ny@example.com');
-- render_liquid has no workspace: a snippet is missing there
SELECT broadcast.render_liquid('{% render ''footer'' %}', '{}');

-- leave nothing scheduled for the suites that follow
SELECT broadcast.drop_workspace('snip');
SELECT broadcast.drop_workspace('snip2');
