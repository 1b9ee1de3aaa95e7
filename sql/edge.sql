-- The SQL side of the HTTP edge (src/edge/, 70_edge.sql): workspace page
-- texts and update_workspace(), unsubscribe_page(), the metrics text, and
-- what the broadcast_edge role may and may not do.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE SCHEMA edge_t;
CREATE FUNCTION edge_t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
							hnt = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || coalesce(nullif(' / ' || det, ' / '), '') || coalesce(nullif(' / hint: ' || hnt, ' / hint: '), '');
END
$$;
GRANT USAGE ON SCHEMA edge_t TO PUBLIC;

-- page texts at creation, and changed later; null removes a key
SELECT broadcast.create_workspace('pg', 'Page', 'UTC',
	'{"unsubscribe_base_url": "https://edge.example.test/u", "unsubscribe_page": {"title": "Leave Page News?"}}');
SELECT broadcast.update_workspace('pg', '{"unsubscribe_page": {"title": "Bye", "text": "Stop <all> mail?", "button": "Stop", "done": "Done."}}');
SELECT broadcast.update_workspace('pg', '{"default_from_email": "news@example.test"}');
SELECT broadcast.update_workspace('pg', '{"default_from_email": null}');
SELECT settings FROM broadcast.workspaces WHERE workspace_id = 'pg';

-- every bad value is refused, and nothing is written
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{"unsubscribe_page": "Bye"}') $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{"unsubscribe_page": {"titel": "Bye"}}') $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{"unsubscribe_page": {"title": 3}}') $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{"unsubscribe_page": {"button": " "}}') $$);
SELECT edge_t.err(format($$ SELECT broadcast.update_workspace('pg', '{"unsubscribe_page": {"button": "%s"}}') $$, repeat('x', 101)));
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{"unsubscribe_base_url": "javascript:alert(1)"}') $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{"colour": "red"}') $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '[]') $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('nope', '{}') $$);
SELECT edge_t.err($$ SELECT broadcast.create_workspace('pg2', 'P', 'UTC', '{"unsubscribe_page": {"done": ""}}') $$);
SELECT settings FROM broadcast.workspaces WHERE workspace_id = 'pg';
SELECT count(*) FROM broadcast.workspaces WHERE workspace_id = 'pg2';

-- unsubscribe_page() checks the token and changes nothing
SELECT broadcast.create_list('pg', 'l', 'L');
SELECT broadcast.subscribe('pg', 'l', ARRAY['ann@example.com']);
SELECT broadcast.unsubscribe_url('pg', 'ann@example.com', 'l') AS url \gset
SELECT regexp_replace(:'url', '^.*/', '') AS token \gset
SELECT broadcast.unsubscribe_page(:'token');
SELECT status FROM broadcast.list_members WHERE workspace_id = 'pg' AND email = 'ann@example.com';
SELECT edge_t.err(format($$ SELECT broadcast.unsubscribe_page(%L) $$, left(:'token', -3) || 'AAA'));
SELECT edge_t.err($$ SELECT broadcast.unsubscribe_page('') $$);

-- Prometheus label values are escaped
SELECT broadcast._prom_label(E'a\\b"c\nd'), broadcast._prom_label(NULL);

-- the metrics text: HELP and TYPE for each family, a queued workspace's depth
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id, next_attempt_at)
SELECT 'pg', 'b', 'q' || i || '@example.com', 'mail', 'l', gen_random_uuid(), now() + interval '1 day'
  FROM generate_series(1, 3) i;
SELECT line FROM regexp_split_to_table(broadcast.edge_metrics(), E'\n') line
 WHERE line LIKE '# TYPE %' OR line LIKE 'broadcast_engine_queue_%{workspace="pg"%';

-- broadcast_edge: what the edge calls, nothing else
SET SESSION AUTHORIZATION broadcast_edge;
SELECT session_user, current_user;
SELECT length(broadcast.edge_metrics()) > 0 AS metrics;
SELECT broadcast.unsubscribe_page(:'token') ->> 'title' AS title;
SELECT edge_t.err($$ SELECT * FROM broadcast.record_webhook('pg', 'nope', '{}') $$);
SELECT edge_t.err($$ SELECT count(*) FROM broadcast.contacts $$);
SELECT edge_t.err($$ SELECT count(*) FROM broadcast.workspace_secrets $$);
SELECT edge_t.err($$ SELECT broadcast.update_workspace('pg', '{}') $$);
SELECT edge_t.err($$ SELECT broadcast.unsubscribe_url('pg', 'ann@example.com') $$);
SELECT edge_t.err($$ SELECT * FROM broadcast.rate_limits() $$);
SELECT broadcast.unsubscribe(:'token');
RESET SESSION AUTHORIZATION;
SELECT status FROM broadcast.list_members WHERE workspace_id = 'pg' AND email = 'ann@example.com';
SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'broadcast_edge';

DELETE FROM broadcast.email_queue WHERE workspace_id = 'pg';
SELECT broadcast.drop_workspace('pg');
DROP SCHEMA edge_t CASCADE;
