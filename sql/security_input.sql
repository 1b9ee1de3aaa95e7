-- What the API and direct writes accept (issue 11, section 5): workspace
-- settings a send cannot use, unbounded numbers, contact properties nested
-- deeper than templates render, and what erasure leaves behind.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE SCHEMA si;
CREATE FUNCTION si.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || msg;
END
$$;

-- ------------------------------------------------------------------------
-- Workspace settings that would break every List-Unsubscribe header
-- ------------------------------------------------------------------------
SELECT si.err(format('SELECT broadcast.create_workspace(%L, %L, %L, %L)', 'w' || n, 'W', 'UTC', s)) AS result, s AS settings
  FROM unnest(ARRAY[
	'{"unsubscribe_mailto": "u@example.com\r\nBcc: x@evil.test"}',
	'{"unsubscribe_mailto": "not an address"}',
	'{"unsubscribe_mailto": "mailto:u@example.com>, <https://evil.test"}',
	'{"unsubscribe_mailto": 5}',
	'{"unsubscribe_base_url": "https://example.com/u>, <https://evil.test"}',
	'{"unsubscribe_base_url": "https://example.com/u,x"}',
	'{"unsubscribe_base_url": "https://example.com/<u>"}',
	'{"unsubscribe_base_url": "https://example.com/u\"x"}',
	'{"unsubscribe_base_url": "https://example.com/u#frag"}',
	'{"unsubscribe_base_url": "https://exa mple.com/u"}',
	'{"soft_bounce_threshold": 1e400}',
	'{"soft_bounce_threshold": 2.5}',
	'{"soft_bounce_threshold": 1001}',
	'{"soft_bounce_threshold": 0}',
	'{"soft_bounce_threshold": "3"}',
	'{"default_from_name": 7}']) WITH ORDINALITY AS x(s, n);
SELECT count(*) AS workspaces_created FROM broadcast.workspaces WHERE workspace_id ~ '^w[0-9]+$';
-- good values still pass
SELECT broadcast.create_workspace('si', 'Input', 'UTC', '{"unsubscribe_base_url": "https://example.com:8443/u/x-1_~!$&''()*+;=:@%?p=1",
	"unsubscribe_mailto": "mailto:unsub@example.com?subject=unsubscribe", "soft_bounce_threshold": 1000,
	"default_from_email": "news@example.com"}');
SELECT broadcast.create_workspace('si2', 'Input 2', 'UTC', '{"unsubscribe_mailto": "unsub@example.com", "soft_bounce_threshold": 1}');
-- an administrator's direct UPDATE is checked the same way
SELECT si.err($$UPDATE broadcast.workspaces SET settings = settings || '{"unsubscribe_mailto": "a@b.c\r\nX: y"}' WHERE workspace_id = 'si'$$);
SELECT si.err($$UPDATE broadcast.workspaces SET settings = settings || '{"soft_bounce_threshold": 1e400}' WHERE workspace_id = 'si'$$);
SELECT si.err($$UPDATE broadcast.workspaces SET settings = '{"colour": "red"}' WHERE workspace_id = 'si'$$);
SELECT settings->>'soft_bounce_threshold' AS threshold FROM broadcast.workspaces WHERE workspace_id = 'si';
-- a value stored before 1.3 counts as the default instead of failing every soft bounce
ALTER TABLE broadcast.workspaces DISABLE TRIGGER workspaces_check;
UPDATE broadcast.workspaces SET settings = '{"soft_bounce_threshold": 1e400}' WHERE workspace_id = 'si2';
ALTER TABLE broadcast.workspaces ENABLE TRIGGER workspaces_check;
SELECT broadcast._soft_bounce_threshold('si2') AS threshold, broadcast._soft_bounce_threshold('si') AS threshold_si;

-- ------------------------------------------------------------------------
-- Numbers of the API: rates, A/B settings, send times, max_age
-- ------------------------------------------------------------------------
SELECT broadcast.create_list('si', 'l', 'L');
SELECT broadcast.create_template('si', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_template('si', 't2', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_integration('si', 'smtp', 'smtp', '{"host": "localhost"}', rate_per_second => 10);
SELECT si.err(s) FROM unnest(ARRAY[
	$q$SELECT broadcast.create_integration('si', 'i1', 'smtp', '{"host": "localhost"}', rate_per_second => 'NaN')$q$,
	$q$SELECT broadcast.create_integration('si', 'i2', 'smtp', '{"host": "localhost"}', rate_per_second => 'Infinity')$q$,
	$q$SELECT broadcast.create_integration('si', 'i3', 'smtp', '{"host": "localhost"}', rate_per_second => 1e400)$q$,
	$q$SELECT broadcast.create_integration('si', 'i4', 'smtp', '{"host": "localhost"}', rate_per_second => 1000001)$q$,
	$q$SELECT broadcast.create_integration('si', 'i5', 'smtp', '{"host": "localhost"}', rate_per_second => 0)$q$,
	$q$SELECT broadcast.update_integration('si', 'smtp', rate_per_second => 'NaN')$q$,
	$q$SELECT broadcast.update_integration('si', 'smtp', rate_per_second => 2e6)$q$,
	$q$SELECT broadcast.create_shared_integration('sh1', 'smtp', '{"host": "localhost"}', rate_per_second => 'NaN')$q$,
	$q$SELECT broadcast.create_shared_integration('sh2', 'smtp', '{"host": "localhost"}', rate_per_second => 1e7)$q$,
	$q$SELECT broadcast.create_broadcast('si', 'ab', 'AB', '{l}', 'smtp', variations => '{t,t2}', ab_sample_percent => 10, ab_duration => '1000000 years')$q$,
	$q$SELECT broadcast.create_broadcast('si', 'ab', 'AB', '{l}', 'smtp', variations => '{t,t2}', ab_sample_percent => 10, ab_duration => '31 days')$q$,
	$q$SELECT broadcast.create_broadcast('si', 'ab', 'AB', '{l}', 'smtp', variations => '{t,t2}', ab_sample_percent => 2147483647)$q$,
	$q$SELECT broadcast.apply_pending_events('1000000 years')$q$,
	$q$SELECT broadcast.apply_pending_events('-1 second')$q$,
	$q$CALL broadcast.run_tasks(0)$q$,
	$q$CALL broadcast.send_queue(100000)$q$]) s;
SELECT integration_id, rate_per_second FROM broadcast.integrations WHERE workspace_id = 'si';
SELECT count(*) AS shared FROM broadcast.shared_integrations;
-- the largest values allowed pass
SELECT broadcast.update_integration('si', 'smtp', rate_per_second => 1000000);
SELECT broadcast.create_broadcast('si', 'b', 'B', '{l}', 'smtp', 't');
SELECT broadcast.create_broadcast('si', 'ab', 'AB', '{l}', 'smtp', variations => '{t,t2}', ab_sample_percent => 10,
	ab_duration => '30 days');
SELECT si.err($q$SELECT broadcast.update_broadcast('si', 'ab', ab_duration => '1000 days')$q$);
SELECT si.err($q$SELECT broadcast.schedule_broadcast('si', 'b', 'infinity')$q$);
SELECT status, ab_duration FROM broadcast.broadcasts WHERE workspace_id = 'si' ORDER BY broadcast_id;

-- ------------------------------------------------------------------------
-- Contact properties nested deeper than templates render
-- ------------------------------------------------------------------------
CREATE FUNCTION si.nested(levels integer) RETURNS jsonb LANGUAGE sql AS $$
	SELECT (repeat('{"a":', levels) || '1' || repeat('}', levels))::jsonb
$$;
SELECT broadcast._jsonb_depth('1'), broadcast._jsonb_depth('{}'), broadcast._jsonb_depth('[[1], {"a": [2]}]'),
	   broadcast._jsonb_depth(si.nested(28));
SELECT si.err(format('SELECT broadcast.upsert_contacts(%L, %L)', 'si',
	jsonb_build_array(jsonb_build_object('email', 'ok@example.com'),
					  jsonb_build_object('email', 'deep@example.com', 'properties', si.nested(33)))));
SELECT count(*) AS contacts FROM broadcast.contacts WHERE workspace_id = 'si';
-- 28 levels are accepted, and the preview renders them
SELECT broadcast.upsert_contacts('si', jsonb_build_array(jsonb_build_object('email', 'deep@example.com',
	'first_name', 'Dee', 'properties', si.nested(28))));
SELECT subject, html FROM broadcast.render_template('si', 't', NULL, 'deep@example.com');
SELECT broadcast.create_template('si', 'named', 'Hi {{ contact.first_name }}', '<p>{{ contact.first_name }}</p>');
SELECT subject FROM broadcast.render_template('si', 'named', NULL, 'deep@example.com');
-- a merge that would go deeper, and direct writes, are refused too
SELECT si.err(format('SELECT broadcast.upsert_contacts(%L, %L)', 'si',
	jsonb_build_array(jsonb_build_object('email', 'deep@example.com', 'properties', jsonb_build_object('b', si.nested(28))))));
SELECT si.err(format('UPDATE broadcast.contacts SET properties = %L WHERE workspace_id = %L', si.nested(29), 'si'));
SELECT si.err(format('INSERT INTO broadcast.contacts (workspace_id, email, properties) VALUES (%L, %L, %L)',
	'si', 'x@example.com', jsonb_build_object('l', jsonb_build_array(si.nested(28)))));
SELECT broadcast._jsonb_depth(properties) FROM broadcast.contacts WHERE workspace_id = 'si' AND email = 'deep@example.com';

-- ------------------------------------------------------------------------
-- Erasure: the address left nowhere but in the kept suppression
-- ------------------------------------------------------------------------
SELECT broadcast.create_workspace('ers', 'Erasure', 'UTC', '{"default_from_email": "news@ers.test"}');
SELECT broadcast.create_list('ers', 'l', 'L');
SELECT broadcast.subscribe('ers', 'l', ARRAY['a@example.com', 'b.x+y@example.com', 'c@example.com', 'd@example.com']);
SELECT broadcast.create_template('ers', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_template('ers', 't2', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_integration('ers', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 9}');
SELECT broadcast.create_broadcast('ers', 'b', 'B', '{l}', 'smtp', 't');
SELECT broadcast.schedule_broadcast('ers', 'b', now() + interval '1 hour') IS NOT NULL;
-- the orchestrator stopped after a chunk ending at the address; an A/B cutoff on it too;
-- a provider's error quoting it; a parked event for its message; a bounce detail quoting it
UPDATE broadcast.tasks SET cursor_email = 'b.x+y@example.com', ab_cutoff_hash = hashtextextended('b.x+y@example.com', hashtext('b')::int8),
	   ab_cutoff_email = 'b.x+y@example.com', last_error = 'expansion stopped at B.X+Y@example.com'
 WHERE workspace_id = 'ers';
UPDATE broadcast.broadcasts SET last_error = '550 <b.x+y@example.com>: no such user' WHERE workspace_id = 'ers';
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id, status, last_error)
VALUES ('ers', 'b', 'a@example.com', 'smtp', 'l', '00000000-0000-7000-8000-0000000000a1', 'dead', 'relay said b.x+y@example.com is unknown');
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email, integration_id, status, sent_at)
VALUES ('ers', '00000000-0000-7000-8000-0000000000b1', 'old', 't', 'l', 'b.x+y@example.com', 'smtp', 'sent', now());
INSERT INTO broadcast.pending_events (workspace_id, message_id, event, occurred_at, detail, integration_id)
VALUES ('ers', '00000000-0000-7000-8000-0000000000b1', 'bounced', now(), '550 b.x+y@example.com unknown', 'other');
INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
VALUES ('ers', 'b.x+y@example.com', 'hard_bounce', 'smtp; 550 <b.x+y@example.com> unknown');

SELECT broadcast.forget_contact('ers', 'B.X+Y@example.com') AS anonymised;
-- every text column of every table of the schema, searched for the address
CREATE FUNCTION si.where_is(addr text) RETURNS TABLE (tbl text, col text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
	c record;
BEGIN
	FOR c IN SELECT a.attrelid::regclass::text AS t, a.attname AS name
			   FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
			  WHERE r.relnamespace = 'broadcast'::regnamespace AND r.relkind = 'r'
				AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype)
			  ORDER BY 1, 2
	LOOP
		tbl := c.t; col := c.name;
		EXECUTE format('SELECT count(*) FROM %s WHERE strpos(lower(%I::text), %L) > 0', c.t, c.name, addr) INTO n;
		IF n > 0 THEN
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
SELECT * FROM si.where_is('b.x+y@example.com');
SELECT cursor_email, ab_cutoff_email, last_error FROM broadcast.tasks WHERE workspace_id = 'ers';
SELECT last_error FROM broadcast.broadcasts WHERE workspace_id = 'ers';
SELECT email, last_error FROM broadcast.email_queue WHERE workspace_id = 'ers' AND status = 'dead';
SELECT count(*) AS parked FROM broadcast.pending_events WHERE workspace_id = 'ers';
SELECT reason, detail FROM broadcast.suppressions WHERE workspace_id = 'ers';
-- the cursor still works: the expansion goes on after it, to c and d
UPDATE broadcast.tasks SET ab_cutoff_hash = NULL, ab_cutoff_email = NULL, run_at = now() WHERE workspace_id = 'ers';
UPDATE broadcast.tasks SET phase = 'expand' WHERE workspace_id = 'ers';
CALL broadcast.run_tasks(5);
SELECT email FROM broadcast.email_queue WHERE workspace_id = 'ers' AND broadcast_id = 'b' AND status = 'pending' ORDER BY 1;
-- without keeping the suppression, the address is nowhere
SELECT broadcast.forget_contact('ers', 'b.x+y@example.com', keep_suppression => false) AS anonymised;
SELECT * FROM si.where_is('b.x+y@example.com');

SELECT broadcast.drop_workspace(w) FROM unnest(ARRAY['si', 'si2', 'ers']) w;
DROP SCHEMA si CASCADE;
