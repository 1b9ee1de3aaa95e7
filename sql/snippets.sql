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
	'{"sending_domain": "news.snip.test", "unsubscribe_base_url": "https://snip.test/u/"}');
SELECT broadcast.upsert_contacts('snip', '[
	{"email": "ny@example.com", "timezone": "America/New_York"},
	{"email": "paris@example.com"}]');
SELECT broadcast.create_template('snip', 'when', 'At {{ "2026-03-01T10:00:00Z" | date: "%H:%M %Z" }}', '<p/>');
SELECT subject FROM broadcast.render_template('snip', 'when', 1, 'ny@example.com');
SELECT subject FROM broadcast.render_template('snip', 'when', 1, 'paris@example.com');
