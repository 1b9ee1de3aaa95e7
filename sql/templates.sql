-- Templates checked when saved, previews, messages and unsubscribe tokens, from SQL.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

SELECT broadcast.create_workspace('tpl', 'Templates', 'UTC',
	'{"sending_domain": "news.tpl.test", "unsubscribe_base_url": "https://tpl.test/u/"}');
SELECT broadcast.upsert_contacts('tpl', '[
	{"email": "ada@example.com", "first_name": "Ada", "properties": {"plan": "pro", "tags": ["math", "engines"]}},
	{"email": "bob@example.com"}]');

-- a syntax error names the field, the line and the column, and nothing is saved
SELECT broadcast.create_template('tpl', 'bad', 'Hi', E'<p>line one</p>\n<p>{{ contact.first_name | upcaes }}</p>');
SELECT broadcast.create_template('tpl', 'bad', 'Hi {% if x %}', '<p/>');
SELECT broadcast.create_template('tpl', 'bad', 'Hi', '<p/>', text_body => E'ok\n\n  {% endfor %}');
SELECT count(*) AS saved FROM broadcast.templates WHERE workspace_id = 'tpl' AND template_id = 'bad';

-- a good template and its preview
SELECT broadcast.create_template('tpl', 'news', 'Hello {{ contact.first_name | default: "friend" }}',
	'<h1>Hi {{ contact.first_name | escape }}</h1>{% if contact.plan == "pro" %}<p>Thanks for being pro!</p>{% endif %}'
	'{% for t in contact.tags %}<i>{{ forloop.index }}:{{ t | upcase }}</i>{% endfor %}'
	'<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> from {{ workspace.name }}</p>');
-- (the unsubscribe token is signed with the workspace's random secret: masked)
SELECT subject, regexp_replace(html, '/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+', '/u/<token>') AS html,
	   regexp_replace(text_body, '/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+', '/u/<token>') AS text_body
  FROM broadcast.render_template('tpl', 'news', 1, 'Ada@Example.com');
SELECT subject, regexp_replace(text_body, '/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+', '/u/<token>') AS text_body
  FROM broadcast.render_template('tpl', 'news', NULL, 'bob@example.com');
SELECT broadcast.render_template('tpl', 'news', 9, 'ada@example.com');
SELECT broadcast.render_template('tpl', 'news', 1, 'nobody@example.com');

-- hostile templates are bounded
SELECT broadcast._template_render('{% for a in (1..100000) %}{% for b in (1..100000) %}x{% endfor %}{% endfor %}', '{}');

SELECT broadcast.html_to_text('<p>Hello <b>Ada</b></p><p>See <a href="https://x.test">our site</a> &amp; more</p>');

-- a complete message: multipart/alternative, one-click unsubscribe, no header injection
SELECT regexp_replace(broadcast.build_message('{
	"from_email": "news@tpl.test", "from_name": "Tpl News", "to_email": "ada@example.com", "to_name": "Ada",
	"subject": "Hello Ada", "html": "<p>Hi</p>", "text": "Hi", "message_id": "0b9f6f2e-0000-4000-8000-000000000001",
	"domain": "news.tpl.test", "unsubscribe_url": "https://tpl.test/u/abc", "date": 1893456000}'),
	'boundary="?[^"\r\n]+"?|--[A-Za-z0-9=_.-]{20,}', '<boundary>', 'g') AS message;
SELECT broadcast.build_message('{"from_email": "news@tpl.test", "to_email": "ada@example.com",
	"subject": "x\r\nBcc: victim@example.com", "html": "<p/>", "message_id": "m1", "domain": "d.test"}') ~ E'\r\nBcc:' AS injected;
SELECT broadcast.build_message('{"from_email": "not an address", "to_email": "ada@example.com", "subject": "x",
	"html": "<p/>", "message_id": "m1", "domain": "d.test"}');

-- unsubscribe tokens: round trip, and refusal of forged, truncated and wrong-secret tokens
CREATE TEMP TABLE tok AS
SELECT broadcast._unsub_token_make(s.unsubscribe_secret, 'tpl', 'weekly', 'ada@example.com',
								   '0b9f6f2e-0000-4000-8000-000000000001') AS token, s.unsubscribe_secret AS secret
  FROM broadcast.workspace_secrets s WHERE s.workspace_id = 'tpl';
SELECT token ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' AS url_safe FROM tok;
SELECT (broadcast._unsub_token_parse(token)).* FROM tok;
SELECT broadcast._unsub_token_verify(token, secret) AS genuine FROM tok;
SELECT broadcast._unsub_token_verify(token, sha256(secret)) AS wrong_secret FROM tok;
SELECT broadcast._unsub_token_verify(left(token, -3), secret) AS truncated FROM tok;
SELECT broadcast._unsub_token_verify(translate(substr(token, 1, 10), 'ABCDEFabcdef', 'BCDEFAbcdefa') || substr(token, 11), secret) AS tampered FROM tok;
SELECT broadcast._unsub_token_parse('garbage');
SELECT broadcast.unsubscribe_url('tpl', 'ada@example.com', 'weekly') ~ '^https://tpl\.test/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' AS url_ok;

SELECT broadcast.drop_workspace('tpl');
