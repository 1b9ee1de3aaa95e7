/*
 * 84_segments: audiences defined by conditions, follow-ups and previews
 * (issue 17, "Segments").
 *
 * A segment is a saved definition: a tree of and/or/not over conditions on
 * contact fields and properties, list membership and engagement from
 * message_history.  broadcast._segment_sql() validates a definition and
 * compiles it into ONE boolean SQL expression over broadcast.contacts
 * (alias c); every value a user gave becomes a quoted literal (format %L),
 * never raw SQL.  The expression is evaluated set-based: by the
 * orchestrator inside its chunk statements (src/orchestrator.c), and by
 * preview_segment().
 *
 * A broadcast's audience is the union of its lists' active members and the
 * contacts its segments (or its follow-up condition) match, minus
 * suppressions and exclusion lists.  A contact reached through a segment must
 * still be an active member of at least one list of the workspace: a
 * segment never reaches someone who unsubscribed everywhere or never
 * confirmed (pending), and the list gives the message its unsubscribe link.
 */

/* ------------------------------------------------------------------------
 * Tables and indexes
 * ------------------------------------------------------------------------ */

CREATE TABLE broadcast.segments (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	segment_id		text NOT NULL CHECK (broadcast.is_valid_id(segment_id)),
	name			text NOT NULL CHECK (name <> '' AND length(name) <= 200),
	definition		jsonb NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, segment_id)
);
COMMENT ON TABLE broadcast.segments IS
	'Saved audience definitions (create_segment); broadcasts send to lists and segments';
ALTER TABLE broadcast.segments ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.segments
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.segments TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.segments TO broadcast_admin;
/* tenant data: pg_dump carries it (10_backup.sql) */
SELECT pg_catalog.pg_extension_config_dump('broadcast.segments', '');

ALTER TABLE broadcast.broadcasts
	ADD COLUMN segments text[] NOT NULL DEFAULT '{}',
	ADD COLUMN followup_of text,
	ADD COLUMN followup_condition text
		CHECK (followup_condition IN ('not_opened', 'not_clicked')),
	ADD CONSTRAINT broadcasts_followup_check
		CHECK ((followup_of IS NULL) = (followup_condition IS NULL));
/* a broadcast may now reach its audience through segments or a follow-up alone */
ALTER TABLE broadcast.broadcasts DROP CONSTRAINT broadcasts_lists_check;
ALTER TABLE broadcast.broadcasts ADD CONSTRAINT broadcasts_audience_check
	CHECK (cardinality(lists) >= 1 OR cardinality(segments) >= 1 OR followup_of IS NOT NULL);

/* engagement conditions probe one contact's history: (workspace, email) */
CREATE INDEX message_history_contact_idx
	ON broadcast.message_history (workspace_id, email);

/* equality on a property ("field": "properties.plan", "op": "eq") is a containment test */
CREATE INDEX contacts_properties_idx
	ON broadcast.contacts USING gin (properties jsonb_path_ops);

/* ------------------------------------------------------------------------
 * The compiler
 * ------------------------------------------------------------------------ */

/* a text that is not a time gives NULL (the condition is then false), not an error */
CREATE FUNCTION broadcast._try_timestamptz(v text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF v IS NULL OR v !~ '^\d{4}-\d{2}-\d{2}' THEN
		RETURN NULL;
	END IF;
	RETURN v::timestamptz;
EXCEPTION WHEN data_exception THEN
	RETURN NULL;
END
$$;

CREATE FUNCTION broadcast._segment_error(path text, message text, hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
		MESSAGE = format('invalid segment definition at %s: %s', path, message),
		HINT = coalesce(hint, 'See docs/audiences.md, "Segments", for the definition language.');
END
$$;

/* a relative period such as "30 days": 1 minute to 10 years */
CREATE FUNCTION broadcast._segment_interval(v jsonb, path text)
RETURNS interval
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i interval;
BEGIN
	IF jsonb_typeof(v) IS DISTINCT FROM 'string'
	   OR (v #>> '{}') !~* '^\s*\d{1,6}\s+(minute|hour|day|week|month|year)s?\s*$' THEN
		PERFORM broadcast._segment_error(path, format('%s is not a period', coalesce(v::text, 'nothing')),
			'Write a period as a string such as "30 days", "12 hours" or "6 months".');
	END IF;
	i := (v #>> '{}')::interval;
	IF i < interval '1 minute' OR i > interval '10 years' THEN
		PERFORM broadcast._segment_error(path, format('period %s is out of range', v::text),
			'A period is between 1 minute and 10 years.');
	END IF;
	RETURN i;
END
$$;

/* an absolute time such as "2026-01-31" or "2026-01-31T08:00:00Z" */
CREATE FUNCTION broadcast._segment_time(v jsonb, path text)
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t timestamptz;
BEGIN
	IF jsonb_typeof(v) = 'string' THEN
		t := broadcast._try_timestamptz(v #>> '{}');
	END IF;
	IF t IS NULL OR NOT isfinite(t) THEN
		PERFORM broadcast._segment_error(path, format('%s is not a date', coalesce(v::text, 'nothing')),
			'Write dates as ISO 8601 strings, such as "2026-01-31" or "2026-01-31T08:00:00Z".');
	END IF;
	RETURN t;
END
$$;

/*
 * Compiles one node of a definition into a boolean SQL expression over
 * broadcast.contacts c, validating it on the way.  p_check also checks that
 * named lists and broadcasts exist (on save; at expansion a list dropped
 * since then simply has no members).  Every leaf is wrapped in coalesce(...,
 * false) so that "not" of a condition on a missing value is true.
 */
CREATE FUNCTION broadcast._segment_sql(p_workspace_id text, p_node jsonb, p_path text,
									   p_depth integer, p_check boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	kind text;
	op text;
	f text;
	v jsonb;
	col text;
	parts text[] := '{}';
	n integer;
	i integer;
	keypath text[];
	tcol text;
	cond text;
	allowed text[];
	nest jsonb;
BEGIN
	IF p_depth > 10 THEN
		PERFORM broadcast._segment_error(p_path, 'the definition is nested more than 10 levels deep');
	END IF;
	IF jsonb_typeof(p_node) IS DISTINCT FROM 'object' THEN
		PERFORM broadcast._segment_error(p_path, format('expected an object, got %s',
			coalesce(jsonb_typeof(p_node), 'nothing')));
	END IF;

	/* the node's kind is its first recognised key; every other key must belong to it */
	SELECT x INTO kind FROM jsonb_object_keys(p_node) x
	 WHERE x IN ('and', 'or', 'not', 'field', 'list', 'engagement') ORDER BY x LIMIT 1;
	IF kind IS NULL THEN
		PERFORM broadcast._segment_error(p_path, format('unknown condition with keys %s',
			(SELECT string_agg(quote_literal(x), ', ') FROM jsonb_object_keys(p_node) x)),
			'A node is {"and": [...]}, {"or": [...]}, {"not": {...}}, or a condition with "field", "list" or "engagement".');
	END IF;
	allowed := CASE kind
		WHEN 'field' THEN ARRAY['field', 'op', 'value']
		WHEN 'list' THEN ARRAY['list', 'status']
		WHEN 'engagement' THEN ARRAY['engagement', 'broadcast', 'within', 'since']
		ELSE ARRAY[kind] END;
	SELECT x INTO k FROM jsonb_object_keys(p_node) x WHERE x <> ALL (allowed) ORDER BY x LIMIT 1;
	IF k IS NOT NULL THEN
		PERFORM broadcast._segment_error(p_path, format('unknown key %s in a %s node', quote_literal(k), kind),
			format('A %s node takes only %s.', kind, array_to_string(allowed, ', ')));
	END IF;

	IF kind IN ('and', 'or') THEN
		v := p_node -> kind;
		IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) NOT BETWEEN 1 AND 100 THEN
			PERFORM broadcast._segment_error(p_path || '.' || kind, 'expected an array of 1 to 100 conditions');
		END IF;
		n := jsonb_array_length(v);
		FOR i IN 0 .. n - 1 LOOP
			parts := parts || broadcast._segment_sql(p_workspace_id, v -> i,
				format('%s.%s[%s]', p_path, kind, i), p_depth + 1, p_check);
		END LOOP;
		RETURN '(' || array_to_string(parts, CASE kind WHEN 'and' THEN ' AND ' ELSE ' OR ' END) || ')';
	ELSIF kind = 'not' THEN
		RETURN '(NOT ' || broadcast._segment_sql(p_workspace_id, p_node -> 'not', p_path || '.not',
												  p_depth + 1, p_check) || ')';
	ELSIF kind = 'list' THEN
		IF jsonb_typeof(p_node -> 'list') IS DISTINCT FROM 'string'
		   OR NOT broadcast.is_valid_id(p_node ->> 'list') THEN
			PERFORM broadcast._segment_error(p_path || '.list', 'expected a list id');
		END IF;
		IF p_check AND NOT EXISTS (SELECT 1 FROM broadcast.lists l
									WHERE l.workspace_id = p_workspace_id AND l.list_id = p_node ->> 'list') THEN
			PERFORM broadcast._segment_error(p_path || '.list',
				format('list %s does not exist', quote_literal(p_node ->> 'list')));
		END IF;
		f := coalesce(p_node ->> 'status', 'active');
		IF p_node ? 'status' AND (jsonb_typeof(p_node -> 'status') IS DISTINCT FROM 'string'
			OR f NOT IN ('active', 'pending', 'unsubscribed', 'bounced', 'complained', 'any')) THEN
			PERFORM broadcast._segment_error(p_path || '.status',
				format('unknown member status %s', (p_node -> 'status')::text),
				'A status is active, pending, unsubscribed, bounced, complained or any.');
		END IF;
		RETURN format('EXISTS (SELECT 1 FROM broadcast.list_members sm'
					  ' WHERE sm.workspace_id = c.workspace_id AND sm.list_id = %L AND sm.email = c.email%s)',
					  p_node ->> 'list', CASE WHEN f = 'any' THEN '' ELSE format(' AND sm.status = %L', f) END);
	ELSIF kind = 'engagement' THEN
		op := p_node ->> 'engagement';
		IF jsonb_typeof(p_node -> 'engagement') IS DISTINCT FROM 'string'
		   OR op NOT IN ('received', 'opened', 'clicked', 'bounced', 'complained', 'never_opened') THEN
			PERFORM broadcast._segment_error(p_path || '.engagement',
				format('unknown engagement %s', (p_node -> 'engagement')::text),
				'Engagement is received, opened, clicked, bounced, complained or never_opened.');
		END IF;
		tcol := CASE op WHEN 'received' THEN 'sh.sent_at' WHEN 'opened' THEN 'sh.opened_at'
			WHEN 'never_opened' THEN 'sh.opened_at' WHEN 'clicked' THEN 'sh.clicked_at'
			WHEN 'bounced' THEN 'sh.bounced_at' ELSE 'sh.complained_at' END;
		cond := CASE op WHEN 'received' THEN ' AND sh.status = ''sent''' ELSE format(' AND %s IS NOT NULL', tcol) END;
		IF p_node ? 'broadcast' THEN
			IF jsonb_typeof(p_node -> 'broadcast') IS DISTINCT FROM 'string'
			   OR NOT broadcast.is_valid_id(p_node ->> 'broadcast') THEN
				PERFORM broadcast._segment_error(p_path || '.broadcast', 'expected a broadcast id');
			END IF;
			IF p_check AND NOT EXISTS (SELECT 1 FROM broadcast.broadcasts b
										WHERE b.workspace_id = p_workspace_id
										  AND b.broadcast_id = p_node ->> 'broadcast') THEN
				PERFORM broadcast._segment_error(p_path || '.broadcast',
					format('broadcast %s does not exist', quote_literal(p_node ->> 'broadcast')));
			END IF;
			cond := cond || format(' AND sh.broadcast_id = %L', p_node ->> 'broadcast');
		END IF;
		IF p_node ? 'within' THEN
			cond := cond || format(' AND %s >= now() - %L::interval', tcol,
								   broadcast._segment_interval(p_node -> 'within', p_path || '.within'));
		END IF;
		IF p_node ? 'since' THEN
			cond := cond || format(' AND %s >= %L::timestamptz', tcol,
								   broadcast._segment_time(p_node -> 'since', p_path || '.since'));
		END IF;
		/* test sends (send_test) are no engagement */
		cond := cond || ' AND NOT EXISTS (SELECT 1 FROM broadcast.broadcasts tb WHERE tb.workspace_id = sh.workspace_id'
			' AND tb.broadcast_id = sh.broadcast_id AND tb.test_of IS NOT NULL)';
		RETURN format('%sEXISTS (SELECT 1 FROM broadcast.message_history sh'
					  ' WHERE sh.workspace_id = c.workspace_id AND sh.email = c.email%s)',
					  CASE WHEN op = 'never_opened' THEN 'NOT ' ELSE '' END, cond);
	END IF;

	/* a condition on a contact field or property */
	IF jsonb_typeof(p_node -> 'field') IS DISTINCT FROM 'string' THEN
		PERFORM broadcast._segment_error(p_path || '.field', 'expected a field name');
	END IF;
	f := p_node ->> 'field';
	op := p_node ->> 'op';
	v := p_node -> 'value';
	IF jsonb_typeof(p_node -> 'op') IS DISTINCT FROM 'string' THEN
		PERFORM broadcast._segment_error(p_path || '.op', 'expected an operator');
	END IF;
	IF op NOT IN ('exists', 'eq', 'ne', 'in', 'not_in', 'contains', 'starts_with',
				  'gt', 'gte', 'lt', 'lte', 'within', 'older_than') THEN
		PERFORM broadcast._segment_error(p_path || '.op', format('unknown operator %s', quote_literal(op)),
			'Operators: exists, eq, ne, in, not_in, contains, starts_with, gt, gte, lt, lte, within, older_than.');
	END IF;
	IF op = 'exists' THEN
		IF p_node ? 'value' THEN
			PERFORM broadcast._segment_error(p_path || '.value', 'operator ''exists'' takes no value');
		END IF;
	ELSIF v IS NULL OR jsonb_typeof(v) = 'null' THEN
		PERFORM broadcast._segment_error(p_path || '.value', format('operator %s needs a value', quote_literal(op)));
	END IF;
	IF op IN ('in', 'not_in') AND (jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) NOT BETWEEN 1 AND 1000) THEN
		PERFORM broadcast._segment_error(p_path || '.value', format('operator %s needs an array of 1 to 1000 values', quote_literal(op)));
	END IF;

	IF f IN ('email', 'first_name', 'last_name', 'language', 'timezone') THEN
		col := 'c.' || f;
		IF op IN ('gt', 'gte', 'lt', 'lte', 'within', 'older_than') THEN
			PERFORM broadcast._segment_error(p_path || '.op',
				format('operator %s does not apply to text field %s', quote_literal(op), quote_literal(f)),
				'Text fields take exists, eq, ne, in, not_in, contains and starts_with.');
		END IF;
		IF op IN ('in', 'not_in') THEN
			IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
				PERFORM broadcast._segment_error(p_path || '.value', format('field %s takes strings', quote_literal(f)));
			END IF;
		ELSIF op <> 'exists' AND jsonb_typeof(v) <> 'string' THEN
			PERFORM broadcast._segment_error(p_path || '.value', format('field %s takes a string', quote_literal(f)));
		END IF;
		cond := CASE op
			WHEN 'exists' THEN format('%s <> ''''', col)
			WHEN 'eq' THEN format('%s = %L', col, CASE WHEN f = 'email' THEN lower(v #>> '{}') ELSE v #>> '{}' END)
			WHEN 'ne' THEN format('%s IS DISTINCT FROM %L', col, CASE WHEN f = 'email' THEN lower(v #>> '{}') ELSE v #>> '{}' END)
			WHEN 'in' THEN format('%s = ANY (%L::text[])', col,
				ARRAY(SELECT CASE WHEN f = 'email' THEN lower(e) ELSE e END FROM jsonb_array_elements_text(v) e))
			WHEN 'not_in' THEN format('%s IS NULL OR %s <> ALL (%L::text[])', col, col,
				ARRAY(SELECT CASE WHEN f = 'email' THEN lower(e) ELSE e END FROM jsonb_array_elements_text(v) e))
			WHEN 'contains' THEN format('strpos(lower(%s), %L) > 0', col, lower(v #>> '{}'))
			ELSE format('starts_with(%s, %L)', col, v #>> '{}') END;
	ELSIF f IN ('created_at', 'updated_at') THEN
		col := 'c.' || f;
		cond := CASE op
			WHEN 'exists' THEN 'true'
			WHEN 'gt' THEN format('%s > %L::timestamptz', col, broadcast._segment_time(v, p_path || '.value'))
			WHEN 'gte' THEN format('%s >= %L::timestamptz', col, broadcast._segment_time(v, p_path || '.value'))
			WHEN 'lt' THEN format('%s < %L::timestamptz', col, broadcast._segment_time(v, p_path || '.value'))
			WHEN 'lte' THEN format('%s <= %L::timestamptz', col, broadcast._segment_time(v, p_path || '.value'))
			WHEN 'within' THEN format('%s >= now() - %L::interval', col, broadcast._segment_interval(v, p_path || '.value'))
			WHEN 'older_than' THEN format('%s < now() - %L::interval', col, broadcast._segment_interval(v, p_path || '.value'))
			END;
		IF cond IS NULL THEN
			PERFORM broadcast._segment_error(p_path || '.op',
				format('operator %s does not apply to date field %s', quote_literal(op), quote_literal(f)),
				'Date fields take exists, gt, gte, lt, lte, within and older_than.');
		END IF;
	ELSIF f LIKE 'properties.%' THEN
		keypath := string_to_array(substr(f, 12), '.');
		IF cardinality(keypath) NOT BETWEEN 1 AND 8
		   OR EXISTS (SELECT 1 FROM unnest(keypath) p WHERE p = '' OR length(p) > 200) THEN
			PERFORM broadcast._segment_error(p_path || '.field',
				format('invalid property path %s', quote_literal(f)),
				'Name a property as properties.name, or properties.a.b for a nested one (at most 8 levels).');
		END IF;
		col := format('(c.properties #> %L::text[])', keypath);
		nest := v;
		FOR i IN REVERSE cardinality(keypath) .. 1 LOOP
			nest := jsonb_build_object(keypath[i], nest);
		END LOOP;
		IF op IN ('gt', 'gte', 'lt', 'lte') AND jsonb_typeof(v) NOT IN ('number', 'string') THEN
			PERFORM broadcast._segment_error(p_path || '.value',
				format('operator %s compares with a number or a date', quote_literal(op)));
		END IF;
		IF op = 'contains' AND jsonb_typeof(v) IN ('object', 'array') THEN
			PERFORM broadcast._segment_error(p_path || '.value', 'operator ''contains'' takes a string, number or boolean');
		END IF;
		cond := CASE
			WHEN op = 'exists' THEN format('coalesce(jsonb_typeof(%s), ''null'') <> ''null''', col)
			/* the containment lets the GIN index find the rows; the equality makes it exact */
			WHEN op = 'eq' THEN format('c.properties @> %L::jsonb AND %s = %L::jsonb', nest, col, v)
			WHEN op = 'ne' THEN format('%s IS DISTINCT FROM %L::jsonb', col, v)
			WHEN op = 'in' THEN format('%s = ANY (%L::jsonb[])', col, ARRAY(SELECT e FROM jsonb_array_elements(v) e))
			WHEN op = 'not_in' THEN format('%s IS NULL OR %s <> ALL (%L::jsonb[])', col, col,
											ARRAY(SELECT e FROM jsonb_array_elements(v) e))
			WHEN op = 'contains' THEN format('CASE jsonb_typeof(%s) WHEN ''array'' THEN %s @> %L::jsonb'
											 ' WHEN ''string'' THEN strpos(lower(%s #>> ''{}''), %L) > 0 END',
											 col, col, jsonb_build_array(v), col, lower(v #>> '{}'))
			WHEN op IN ('gt', 'gte', 'lt', 'lte') AND jsonb_typeof(v) = 'number' THEN
				format('CASE WHEN jsonb_typeof(%s) = ''number'' THEN (%s)::numeric %s %L::numeric END',
					   col, col, CASE op WHEN 'gt' THEN '>' WHEN 'gte' THEN '>=' WHEN 'lt' THEN '<' ELSE '<=' END,
					   v #>> '{}')
			WHEN op IN ('gt', 'gte', 'lt', 'lte') THEN
				format('broadcast._try_timestamptz(%s #>> ''{}'') %s %L::timestamptz', col,
					   CASE op WHEN 'gt' THEN '>' WHEN 'gte' THEN '>=' WHEN 'lt' THEN '<' ELSE '<=' END,
					   broadcast._segment_time(v, p_path || '.value'))
			WHEN op = 'within' THEN format('broadcast._try_timestamptz(%s #>> ''{}'') >= now() - %L::interval',
										   col, broadcast._segment_interval(v, p_path || '.value'))
			WHEN op = 'starts_with' THEN NULL	/* below */
			ELSE format('broadcast._try_timestamptz(%s #>> ''{}'') < now() - %L::interval',
						col, broadcast._segment_interval(v, p_path || '.value'))
			END;
		IF op = 'starts_with' THEN
			IF jsonb_typeof(v) <> 'string' THEN
				PERFORM broadcast._segment_error(p_path || '.value', 'operator ''starts_with'' takes a string');
			END IF;
			cond := format('starts_with(%s #>> ''{}'', %L) AND jsonb_typeof(%s) = ''string''', col, v #>> '{}', col);
		END IF;
	ELSE
		PERFORM broadcast._segment_error(p_path || '.field', format('unknown field %s', quote_literal(f)),
			'Fields: email, first_name, last_name, language, timezone, created_at, updated_at, or properties.NAME.');
	END IF;
	RETURN format('coalesce((%s), false)', cond);
END
$$;
REVOKE ALL ON FUNCTION broadcast._segment_sql(text, jsonb, text, integer, boolean) FROM PUBLIC;

/* validates a whole definition (on save) and returns its compiled expression */
CREATE FUNCTION broadcast._segment_compile(p_workspace_id text, p_definition jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_definition IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'segment definition must not be NULL';
	END IF;
	IF octet_length(p_definition::text) > 65536 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('segment definition is too large: %s bytes, at most 65536',
							 octet_length(p_definition::text));
	END IF;
	RETURN broadcast._segment_sql(p_workspace_id, p_definition, '$', 1, true);
END
$$;
REVOKE ALL ON FUNCTION broadcast._segment_compile(text, jsonb) FROM PUBLIC;

/*
 * The extra audience of a broadcast, as one expression over contacts c: its
 * segments and its follow-up condition, OR-ed; NULL for a broadcast of lists
 * only (the orchestrator then keeps its list-only statements).  Read by the
 * orchestrator once per step.
 */
CREATE FUNCTION broadcast._audience_predicate(p_workspace_id text, p_broadcast_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	parts text[] := '{}';
	d jsonb;
	s text;
BEGIN
	SELECT * INTO b FROM broadcast.broadcasts x
	 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	FOREACH s IN ARRAY b.segments LOOP
		SELECT g.definition INTO d FROM broadcast.segments g
		 WHERE g.workspace_id = p_workspace_id AND g.segment_id = s;
		IF NOT FOUND THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('segment %s of broadcast %s does not exist', quote_literal(s),
								 quote_literal(p_broadcast_id));
		END IF;
		parts := parts || broadcast._segment_sql(p_workspace_id, d, '$', 1, false);
	END LOOP;
	IF b.followup_of IS NOT NULL THEN
		parts := parts || broadcast._segment_sql(p_workspace_id, jsonb_build_object('and', jsonb_build_array(
			jsonb_build_object('engagement', 'received', 'broadcast', b.followup_of),
			jsonb_build_object('not', jsonb_build_object('engagement',
				CASE b.followup_condition WHEN 'not_clicked' THEN 'clicked' ELSE 'opened' END,
				'broadcast', b.followup_of)))), '$', 1, false);
	END IF;
	IF cardinality(parts) = 0 THEN
		RETURN NULL;
	END IF;
	RETURN '(' || array_to_string(parts, ' OR ') || ')';
END
$$;
REVOKE ALL ON FUNCTION broadcast._audience_predicate(text, text) FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Segments: create, update, drop, list
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._check_segment_name(p_name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_name IS NULL OR btrim(p_name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'segment name must not be empty';
	END IF;
	IF length(p_name) > 200 THEN
		RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
			MESSAGE = 'segment name must be at most 200 characters';
	END IF;
END
$$;

/* locks the segment row; raises when it does not exist */
CREATE FUNCTION broadcast._require_segment(p_workspace_id text, p_segment_id text, p_lock boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_id('segment', p_segment_id);
	IF p_lock THEN
		PERFORM 1 FROM broadcast.segments g
		 WHERE g.workspace_id = p_workspace_id AND g.segment_id = p_segment_id FOR UPDATE;
	ELSE
		PERFORM 1 FROM broadcast.segments g
		 WHERE g.workspace_id = p_workspace_id AND g.segment_id = p_segment_id;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('segment %s does not exist in workspace %s',
							 quote_literal(p_segment_id), quote_literal(p_workspace_id));
	END IF;
END
$$;

/* the broadcasts that use a segment and are in the given states */
CREATE FUNCTION broadcast._segment_users(p_workspace_id text, p_segment_id text, p_states text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT array_agg(b.broadcast_id ORDER BY b.broadcast_id)
	  FROM broadcast.broadcasts b
	 WHERE b.workspace_id = p_workspace_id AND p_segment_id = ANY (b.segments)
	   AND b.status = ANY (p_states)
$$;

CREATE FUNCTION broadcast.create_segment(workspace_id text, segment_id text, name text, definition jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(create_segment.workspace_id);
	PERFORM broadcast._check_id('segment', create_segment.segment_id);
	PERFORM broadcast._check_segment_name(create_segment.name);
	PERFORM broadcast._segment_compile(create_segment.workspace_id, create_segment.definition);
	IF (SELECT count(*) FROM broadcast.segments g WHERE g.workspace_id = create_segment.workspace_id) >= 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = 'a workspace has at most 1000 segments';
	END IF;
	INSERT INTO broadcast.segments (workspace_id, segment_id, name, definition)
	VALUES (create_segment.workspace_id, create_segment.segment_id, create_segment.name,
			create_segment.definition)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('segment %s already exists in workspace %s',
							 quote_literal(create_segment.segment_id), quote_literal(create_segment.workspace_id));
	END IF;
	RETURN create_segment.segment_id;
END
$$;
COMMENT ON FUNCTION broadcast.create_segment(text, text, text, jsonb) IS
	'Saves an audience definition (and/or/not over contact, list and engagement conditions)';

/*
 * NULL leaves a setting as it is.  A segment is read when a broadcast
 * expands, so it cannot change under a broadcast that is scheduled or
 * sending: its audience would differ between chunks.
 */
CREATE FUNCTION broadcast.update_segment(workspace_id text, segment_id text, name text DEFAULT NULL,
										 definition jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text[];
BEGIN
	PERFORM broadcast._authorize_caller(update_segment.workspace_id);
	PERFORM broadcast._require_segment(update_segment.workspace_id, update_segment.segment_id, true);
	IF update_segment.name IS NOT NULL THEN
		PERFORM broadcast._check_segment_name(update_segment.name);
	END IF;
	IF update_segment.definition IS NOT NULL THEN
		PERFORM broadcast._segment_compile(update_segment.workspace_id, update_segment.definition);
		users := broadcast._segment_users(update_segment.workspace_id, update_segment.segment_id,
			ARRAY['scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused']);
		IF users IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_in_use',
				MESSAGE = format('segment %s is used by %s broadcast(s) that are scheduled or sending',
								 quote_literal(update_segment.segment_id), cardinality(users)),
				DETAIL = format('Broadcasts: %s.', array_to_string(users, ', ')),
				HINT = 'Wait until they end, or create a new segment.';
		END IF;
	END IF;
	UPDATE broadcast.segments g SET
		name = coalesce(update_segment.name, g.name),
		definition = coalesce(update_segment.definition, g.definition),
		updated_at = now()
	 WHERE g.workspace_id = update_segment.workspace_id AND g.segment_id = update_segment.segment_id;
	RETURN update_segment.segment_id;
END
$$;
COMMENT ON FUNCTION broadcast.update_segment(text, text, text, jsonb) IS
	'Renames a segment or replaces its definition (not while a broadcast using it is scheduled or sending)';

CREATE FUNCTION broadcast.drop_segment(workspace_id text, segment_id text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text[];
BEGIN
	PERFORM broadcast._authorize_caller(drop_segment.workspace_id);
	PERFORM broadcast._require_segment(drop_segment.workspace_id, drop_segment.segment_id, true);
	users := broadcast._segment_users(drop_segment.workspace_id, drop_segment.segment_id,
		ARRAY['draft', 'scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused']);
	IF users IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_in_use',
			MESSAGE = format('segment %s is used by %s broadcast(s) that have not ended',
							 quote_literal(drop_segment.segment_id), cardinality(users)),
			DETAIL = format('Broadcasts: %s.', array_to_string(users, ', ')),
			HINT = 'Cancel them, wait until they complete, or change a draft''s segments with update_broadcast().';
	END IF;
	DELETE FROM broadcast.segments g
	 WHERE g.workspace_id = drop_segment.workspace_id AND g.segment_id = drop_segment.segment_id;
END
$$;
COMMENT ON FUNCTION broadcast.drop_segment(text, text) IS
	'Drops a segment that no unfinished broadcast uses';

CREATE FUNCTION broadcast.list_segments(workspace_id text)
RETURNS TABLE (segment_id text, name text, definition jsonb, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(list_segments.workspace_id);
	RETURN QUERY
		SELECT g.segment_id, g.name, g.definition, g.created_at, g.updated_at
		  FROM broadcast.segments g
		 WHERE g.workspace_id = list_segments.workspace_id
		 ORDER BY g.segment_id;
END
$$;
COMMENT ON FUNCTION broadcast.list_segments(text) IS 'The segments of a workspace';

/*
 * How many contacts a definition (or a saved segment) matches, how many of
 * them a broadcast would reach (active on a list, not suppressed), and a
 * sample of those, in email order.  One set-based query with the compiled
 * expression; the workspace is a parameter.
 */
CREATE FUNCTION broadcast.preview_segment(workspace_id text, definition jsonb DEFAULT NULL,
										  segment_id text DEFAULT NULL, sample integer DEFAULT 10)
RETURNS TABLE (matching bigint, reachable bigint, sample_contacts jsonb)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d jsonb := preview_segment.definition;
	pred text;
BEGIN
	PERFORM broadcast._authorize_caller(preview_segment.workspace_id);
	IF (d IS NULL) = (preview_segment.segment_id IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'pass exactly one of definition and segment_id';
	END IF;
	IF preview_segment.sample IS NULL OR preview_segment.sample NOT BETWEEN 0 AND 100 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('sample must be between 0 and 100, got %s', coalesce(preview_segment.sample::text, 'NULL'));
	END IF;
	IF d IS NULL THEN
		PERFORM broadcast._require_segment(preview_segment.workspace_id, preview_segment.segment_id);
		SELECT g.definition INTO d FROM broadcast.segments g
		 WHERE g.workspace_id = preview_segment.workspace_id AND g.segment_id = preview_segment.segment_id;
	END IF;
	pred := broadcast._segment_compile(preview_segment.workspace_id, d);
	RETURN QUERY EXECUTE format(
		'WITH m AS ('
		'  SELECT c.email, c.first_name, c.last_name,'
		'         EXISTS (SELECT 1 FROM broadcast.list_members am'
		'                  WHERE am.workspace_id = $1 AND am.email = c.email AND am.status = ''active'')'
		'         AND NOT EXISTS (SELECT 1 FROM broadcast.suppressions s'
		'                          WHERE s.workspace_id = $1 AND s.email = c.email) AS reachable'
		'    FROM broadcast.contacts c WHERE c.workspace_id = $1 AND %s)'
		'SELECT count(*), count(*) FILTER (WHERE m.reachable),'
		'       coalesce((SELECT jsonb_agg(jsonb_build_object(''email'', x.email, ''first_name'', x.first_name,'
		'                                                     ''last_name'', x.last_name, ''reachable'', x.reachable)'
		'                                  ORDER BY x.email)'
		'                  FROM (SELECT * FROM m ORDER BY m.email LIMIT $2) x), ''[]'')'
		'  FROM m', pred)
		USING preview_segment.workspace_id, preview_segment.sample;
END
$$;
COMMENT ON FUNCTION broadcast.preview_segment(text, jsonb, text, integer) IS
	'Counts the contacts a segment definition matches and reaches, with a sample';

/* ------------------------------------------------------------------------
 * Broadcasts to lists and segments
 * ------------------------------------------------------------------------ */

/*
 * Replaced from 1.0: the audience check (at least one list or segment) moved
 * to the callers, which know the segments; everything else is as it was.
 */
CREATE OR REPLACE FUNCTION broadcast._check_broadcast_settings(
	p_workspace_id text, p_lists text[], p_exclude_lists text[], p_integration_id text,
	p_template_id text, p_variations text[], p_ab_sample_percent integer, p_ab_metric text,
	p_ab_duration interval)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	l text;
	t text;
BEGIN
	IF p_lists IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'lists must not be NULL';
	END IF;
	FOREACH l IN ARRAY p_lists || coalesce(p_exclude_lists, '{}') LOOP
		PERFORM broadcast._require_list(p_workspace_id, l);
	END LOOP;
	IF NOT EXISTS (SELECT 1 FROM broadcast.integrations i
					WHERE i.workspace_id = p_workspace_id AND i.integration_id = p_integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 coalesce(quote_literal(p_integration_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
	IF (p_template_id IS NULL) = (p_variations IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a broadcast needs either template_id or variations, not both',
			HINT = 'Pass template_id for a plain send, or 2 to 8 template ids in variations for an A/B test.';
	END IF;
	IF p_template_id IS NOT NULL THEN
		PERFORM broadcast._latest_template_version(p_workspace_id, p_template_id);
		IF p_ab_sample_percent IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'ab_sample_percent needs variations',
				HINT = 'Pass 2 to 8 template ids in variations to run an A/B test.';
		END IF;
		RETURN;
	END IF;
	IF cardinality(p_variations) NOT BETWEEN 2 AND 8
	   OR (SELECT count(DISTINCT v) FROM unnest(p_variations) v) <> cardinality(p_variations) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'an A/B test needs 2 to 8 distinct variations',
			DETAIL = format('The variations were: %s.', array_to_string(p_variations, ', ', 'NULL'));
	END IF;
	FOREACH t IN ARRAY p_variations LOOP
		PERFORM broadcast._latest_template_version(p_workspace_id, t);
	END LOOP;
	IF p_ab_sample_percent IS NULL OR p_ab_sample_percent NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('ab_sample_percent must be between 1 and 100, got %s',
							 coalesce(p_ab_sample_percent::text, 'NULL')),
			HINT = 'It is the share of the audience that receives the test variations.';
	END IF;
	IF p_ab_metric IS NULL OR p_ab_metric NOT IN ('open', 'click') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('ab_metric must be "open" or "click", got %s', coalesce(quote_literal(p_ab_metric), 'NULL'));
	END IF;
	IF p_ab_duration IS NOT NULL AND p_ab_duration <= interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'ab_duration must be positive';
	END IF;
END
$$;

/* a broadcast's audience: at least one list or segment (or a follow-up), all existing */
CREATE FUNCTION broadcast._check_broadcast_audience(p_workspace_id text, p_lists text[], p_segments text[],
													p_followup boolean)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s text;
BEGIN
	IF p_segments IS NULL OR array_position(p_segments, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'segments must not be NULL or contain NULL';
	END IF;
	IF cardinality(p_segments) > 20 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('a broadcast has at most 20 segments, got %s', cardinality(p_segments));
	END IF;
	IF coalesce(cardinality(p_lists), 0) = 0 AND cardinality(p_segments) = 0 AND NOT p_followup THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a broadcast needs at least one list or segment';
	END IF;
	FOREACH s IN ARRAY p_segments LOOP
		PERFORM broadcast._require_segment(p_workspace_id, s);
	END LOOP;
END
$$;

/* replaced from 1.0: lists may be empty when segments are given */
DROP FUNCTION broadcast.create_broadcast(text, text, text, text[], text, text, text[], integer, text,
										 interval, boolean, text[]);
CREATE FUNCTION broadcast.create_broadcast(
	workspace_id text,
	broadcast_id text,
	name text,
	lists text[],
	integration_id text,
	template_id text DEFAULT NULL,
	variations text[] DEFAULT NULL,
	ab_sample_percent integer DEFAULT NULL,
	ab_metric text DEFAULT 'open',
	ab_duration interval DEFAULT NULL,
	ab_auto boolean DEFAULT true,
	exclude_lists text[] DEFAULT '{}',
	segments text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(create_broadcast.workspace_id);
	PERFORM broadcast._check_id('broadcast', create_broadcast.broadcast_id);
	IF create_broadcast.name IS NULL OR btrim(create_broadcast.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must not be empty';
	END IF;
	PERFORM broadcast._check_broadcast_audience(create_broadcast.workspace_id, create_broadcast.lists,
		create_broadcast.segments, false);
	PERFORM broadcast._check_broadcast_settings(create_broadcast.workspace_id,
		coalesce(create_broadcast.lists, '{}'),
		create_broadcast.exclude_lists, create_broadcast.integration_id, create_broadcast.template_id,
		create_broadcast.variations, create_broadcast.ab_sample_percent, create_broadcast.ab_metric,
		create_broadcast.ab_duration);
	IF create_broadcast.ab_auto IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'ab_auto must not be NULL';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.broadcasts b
				WHERE b.workspace_id = create_broadcast.workspace_id
				  AND b.broadcast_id = create_broadcast.broadcast_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('broadcast %s already exists in workspace %s',
							 quote_literal(create_broadcast.broadcast_id), quote_literal(create_broadcast.workspace_id));
	END IF;

	INSERT INTO broadcast.broadcasts
		(workspace_id, broadcast_id, name, lists, exclude_lists, integration_id, template_id,
		 variations, ab_sample_percent, ab_metric, ab_duration, ab_auto, segments)
	VALUES (create_broadcast.workspace_id, create_broadcast.broadcast_id, create_broadcast.name,
			ARRAY(SELECT DISTINCT l FROM unnest(create_broadcast.lists) l ORDER BY 1),
			coalesce(create_broadcast.exclude_lists, '{}'), create_broadcast.integration_id,
			create_broadcast.template_id, create_broadcast.variations, create_broadcast.ab_sample_percent,
			create_broadcast.ab_metric, coalesce(create_broadcast.ab_duration, interval '1 day'),
			create_broadcast.ab_auto,
			ARRAY(SELECT DISTINCT s FROM unnest(create_broadcast.segments) s ORDER BY 1));
	RETURN create_broadcast.broadcast_id;
END
$$;
COMMENT ON FUNCTION broadcast.create_broadcast(text, text, text, text[], text, text, text[], integer, text,
											   interval, boolean, text[], text[]) IS
	'Creates a draft broadcast to lists and segments (union), minus exclude_lists and suppressions';

/* replaced from 1.0: segments; NULL arguments leave a setting as it is */
DROP FUNCTION broadcast.update_broadcast(text, text, text, text[], text, text, text[], integer, text,
										 interval, boolean, text[]);
CREATE FUNCTION broadcast.update_broadcast(
	workspace_id text,
	broadcast_id text,
	name text DEFAULT NULL,
	lists text[] DEFAULT NULL,
	integration_id text DEFAULT NULL,
	template_id text DEFAULT NULL,
	variations text[] DEFAULT NULL,
	ab_sample_percent integer DEFAULT NULL,
	ab_metric text DEFAULT NULL,
	ab_duration interval DEFAULT NULL,
	ab_auto boolean DEFAULT NULL,
	exclude_lists text[] DEFAULT NULL,
	segments text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	content_changed boolean;
BEGIN
	PERFORM broadcast._authorize_caller(update_broadcast.workspace_id);
	b := broadcast._get_broadcast(update_broadcast.workspace_id, update_broadcast.broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled', 'paused') THEN
		PERFORM broadcast._state_error(b, 'update', 'draft, scheduled or paused');
	END IF;
	IF update_broadcast.name IS NOT NULL AND btrim(update_broadcast.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must not be empty';
	END IF;
	content_changed := update_broadcast.lists IS NOT NULL OR update_broadcast.exclude_lists IS NOT NULL
		OR update_broadcast.template_id IS NOT NULL OR update_broadcast.variations IS NOT NULL
		OR update_broadcast.ab_sample_percent IS NOT NULL OR update_broadcast.ab_metric IS NOT NULL
		OR update_broadcast.ab_duration IS NOT NULL OR update_broadcast.ab_auto IS NOT NULL
		OR update_broadcast.segments IS NOT NULL;
	/* once sending has started, only the name and the integration may change */
	IF content_changed AND b.status = 'paused' AND b.paused_from <> 'scheduled' THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('cannot change the audience or content of broadcast %s after sending started',
							 quote_literal(b.broadcast_id)),
			HINT = 'Cancel it and create a new broadcast instead.';
	END IF;

	b.name := coalesce(update_broadcast.name, b.name);
	IF update_broadcast.lists IS NOT NULL THEN
		b.lists := ARRAY(SELECT DISTINCT l FROM unnest(update_broadcast.lists) l ORDER BY 1);
	END IF;
	IF update_broadcast.segments IS NOT NULL THEN
		PERFORM broadcast._check_broadcast_audience(b.workspace_id, '{}', update_broadcast.segments, true);
		b.segments := ARRAY(SELECT DISTINCT s FROM unnest(update_broadcast.segments) s ORDER BY 1);
	END IF;
	PERFORM broadcast._check_broadcast_audience(b.workspace_id, b.lists, b.segments, b.followup_of IS NOT NULL);
	b.exclude_lists := coalesce(update_broadcast.exclude_lists, b.exclude_lists);
	b.integration_id := coalesce(update_broadcast.integration_id, b.integration_id);
	IF update_broadcast.template_id IS NOT NULL THEN
		b.template_id := update_broadcast.template_id;
		b.variations := NULL;
		b.ab_sample_percent := NULL;
	ELSIF update_broadcast.variations IS NOT NULL THEN
		b.variations := update_broadcast.variations;
		b.template_id := NULL;
	END IF;
	b.ab_sample_percent := coalesce(update_broadcast.ab_sample_percent, b.ab_sample_percent);
	b.ab_metric := coalesce(update_broadcast.ab_metric, b.ab_metric);
	b.ab_duration := coalesce(update_broadcast.ab_duration, b.ab_duration);
	b.ab_auto := coalesce(update_broadcast.ab_auto, b.ab_auto);
	PERFORM broadcast._check_broadcast_settings(b.workspace_id, b.lists, b.exclude_lists, b.integration_id,
		b.template_id, b.variations, b.ab_sample_percent, b.ab_metric, b.ab_duration);

	UPDATE broadcast.broadcasts x SET
		name = b.name, lists = b.lists, exclude_lists = b.exclude_lists, integration_id = b.integration_id,
		template_id = b.template_id, variations = b.variations, ab_sample_percent = b.ab_sample_percent,
		ab_metric = b.ab_metric, ab_duration = b.ab_duration, ab_auto = b.ab_auto, segments = b.segments,
		updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	/* a scheduled broadcast sends what was current when it was last changed */
	IF b.status <> 'draft' AND content_changed THEN
		PERFORM broadcast._pin_versions(b.workspace_id, b.broadcast_id);
	END IF;
	RETURN b.broadcast_id;
END
$$;
COMMENT ON FUNCTION broadcast.update_broadcast(text, text, text, text[], text, text, text[], integer, text,
											   interval, boolean, text[], text[]) IS
	'Changes a draft, scheduled or (before sending) paused broadcast; NULL leaves a setting as it is';

/* ------------------------------------------------------------------------
 * Follow-ups
 * ------------------------------------------------------------------------ */

/*
 * A draft broadcast to the recipients of a completed broadcast who did not
 * open (or click) it, through the same integration and exclusions, with a
 * new template.  A subject adds a version of that template with the new
 * subject.  The audience is evaluated when the follow-up expands (schedule it
 * with schedule_broadcast): whoever opened until then is left out.
 */
CREATE FUNCTION broadcast.create_followup(workspace_id text, broadcast_id text, new_broadcast_id text,
										  template_id text, subject text DEFAULT NULL,
										  condition text DEFAULT 'not_opened', name text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	src broadcast.broadcasts;
	t broadcast.templates;
BEGIN
	PERFORM broadcast._authorize_caller(create_followup.workspace_id);
	src := broadcast._get_broadcast(create_followup.workspace_id, create_followup.broadcast_id, false);
	IF src.status <> 'completed' THEN
		PERFORM broadcast._state_error(src, 'follow up', 'completed');
	END IF;
	IF create_followup.condition IS NULL OR create_followup.condition NOT IN ('not_opened', 'not_clicked') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid follow-up condition %s', broadcast._show(create_followup.condition)),
			HINT = 'Use "not_opened" or "not_clicked".';
	END IF;
	PERFORM broadcast._check_id('broadcast', create_followup.new_broadcast_id);
	PERFORM broadcast._check_id('template', create_followup.template_id);
	PERFORM broadcast._latest_template_version(create_followup.workspace_id, create_followup.template_id);
	IF EXISTS (SELECT 1 FROM broadcast.broadcasts b
				WHERE b.workspace_id = create_followup.workspace_id
				  AND b.broadcast_id = create_followup.new_broadcast_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('broadcast %s already exists in workspace %s',
							 quote_literal(create_followup.new_broadcast_id), quote_literal(create_followup.workspace_id));
	END IF;
	IF create_followup.name IS NOT NULL AND (btrim(create_followup.name) = '' OR length(create_followup.name) > 200) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must be 1 to 200 characters';
	END IF;
	IF create_followup.subject IS NOT NULL THEN
		SELECT * INTO t FROM broadcast.templates x
		 WHERE x.workspace_id = create_followup.workspace_id AND x.template_id = create_followup.template_id
		 ORDER BY x.version DESC LIMIT 1;
		PERFORM broadcast.create_template(create_followup.workspace_id, create_followup.template_id,
			create_followup.subject, t.html, t.text_body, t.from_email, t.from_name, t.reply_to);
	END IF;
	INSERT INTO broadcast.broadcasts
		(workspace_id, broadcast_id, name, lists, exclude_lists, integration_id, template_id,
		 followup_of, followup_condition)
	VALUES (create_followup.workspace_id, create_followup.new_broadcast_id,
			coalesce(create_followup.name, left(format('%s (%s)', src.name, replace(create_followup.condition, '_', ' ')), 200)),
			'{}', src.exclude_lists, src.integration_id, create_followup.template_id,
			src.broadcast_id, create_followup.condition);
	RETURN create_followup.new_broadcast_id;
END
$$;
COMMENT ON FUNCTION broadcast.create_followup(text, text, text, text, text, text, text) IS
	'Creates a draft broadcast to the recipients of a completed broadcast who did not open (or click) it';

/* ------------------------------------------------------------------------
 * Test sends
 * ------------------------------------------------------------------------ */

/*
 * A test send goes through the normal sender (its integration, rate limits,
 * rendering and history) as a broadcast of its own: the "test broadcast" of
 * the original, marked by test_of, created completed (it never expands)
 * with the original's templates pinned at their latest versions.  Its
 * history rows carry its id, so the original's statistics never count them,
 * and segment engagement conditions skip them.  Its queue rows name in
 * data_email the contact whose data renders the message.
 */
ALTER TABLE broadcast.broadcasts ADD COLUMN test_of text;
ALTER TABLE broadcast.email_queue ADD COLUMN data_email text;
COMMENT ON COLUMN broadcast.broadcasts.test_of IS
	'For a test-send broadcast (send_test): the broadcast it tests';
COMMENT ON COLUMN broadcast.email_queue.data_email IS
	'For a test send: the contact whose data renders the message (the recipient is not a contact)';

CREATE FUNCTION broadcast.send_test(workspace_id text, broadcast_id text, emails text[],
									variation integer DEFAULT 0, sample_email text DEFAULT NULL)
RETURNS TABLE (email text, message_id uuid)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	tid text;
	nvar integer;
	sample text := lower(send_test.sample_email);
	sample_list text;
	pred text;
	bad text;
BEGIN
	PERFORM broadcast._authorize_caller(send_test.workspace_id);
	b := broadcast._get_broadcast(send_test.workspace_id, send_test.broadcast_id, false);
	IF b.test_of IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('broadcast %s is itself a test send', quote_literal(b.broadcast_id));
	END IF;
	IF send_test.emails IS NULL OR cardinality(send_test.emails) NOT BETWEEN 1 AND 20 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a test send goes to 1 to 20 addresses';
	END IF;
	SELECT e INTO bad FROM unnest(send_test.emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;
	nvar := coalesce(cardinality(b.variations), 1);
	IF send_test.variation IS NULL OR send_test.variation NOT BETWEEN 0 AND nvar - 1 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('variation must be between 0 and %s, got %s', nvar - 1,
							 coalesce(send_test.variation::text, 'NULL'));
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(coalesce(b.variations, ARRAY[b.template_id])) t(template_id)
				JOIN broadcast.templates x ON x.workspace_id = b.workspace_id AND x.template_id = t.template_id
				JOIN broadcast.workspaces w ON w.workspace_id = b.workspace_id
			   WHERE x.version = (SELECT max(y.version) FROM broadcast.templates y
								   WHERE y.workspace_id = b.workspace_id AND y.template_id = t.template_id)
				 AND x.from_email IS NULL AND w.settings->>'default_from_email' IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'the broadcast''s template has no from_email',
			HINT = 'Give the template a from_email, or set default_from_email in the workspace settings.';
	END IF;

	/* whose data renders the message: the given contact, else the audience's first */
	IF sample IS NOT NULL THEN
		IF NOT EXISTS (SELECT 1 FROM broadcast.contacts c
						WHERE c.workspace_id = b.workspace_id AND c.email = sample) THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('contact %s does not exist in workspace %s', quote_literal(sample),
								 quote_literal(b.workspace_id));
		END IF;
	ELSE
		SELECT min(m.email) INTO sample FROM broadcast.list_members m
		 WHERE m.workspace_id = b.workspace_id AND m.list_id = ANY (b.lists) AND m.status = 'active';
		pred := broadcast._audience_predicate(b.workspace_id, b.broadcast_id);
		IF sample IS NULL AND pred IS NOT NULL THEN
			EXECUTE format('SELECT min(c.email) FROM broadcast.contacts c WHERE c.workspace_id = $1 AND %s', pred)
			   INTO sample USING b.workspace_id;
		END IF;
	END IF;
	SELECT m.list_id INTO sample_list FROM broadcast.list_members m
	 WHERE m.workspace_id = b.workspace_id AND m.email = sample
	 ORDER BY m.list_id = ANY (b.lists) DESC, m.status = 'active' DESC, m.list_id LIMIT 1;

	/* one test broadcast per original; a 'test-' id nobody else holds */
	tid := 'test-' || substr(md5(b.broadcast_id), 1, 24);
	PERFORM 1 FROM broadcast.broadcasts x
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = tid
	   AND x.test_of IS DISTINCT FROM b.broadcast_id;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('broadcast %s exists and is not the test send of %s', quote_literal(tid),
							 quote_literal(b.broadcast_id));
	END IF;
	INSERT INTO broadcast.broadcasts AS x
		(workspace_id, broadcast_id, name, lists, exclude_lists, integration_id, template_id, variations,
		 ab_sample_percent, segments, followup_of, followup_condition, status, test_of, completed_at)
	VALUES (b.workspace_id, tid, left('Test: ' || b.name, 200), b.lists, b.exclude_lists, b.integration_id,
			b.template_id, b.variations, b.ab_sample_percent, b.segments, b.followup_of, b.followup_condition,
			'completed', b.broadcast_id, now())
	ON CONFLICT ON CONSTRAINT broadcasts_pkey DO UPDATE
	   SET name = EXCLUDED.name, integration_id = EXCLUDED.integration_id, template_id = EXCLUDED.template_id,
		   variations = EXCLUDED.variations, ab_sample_percent = EXCLUDED.ab_sample_percent,
		   updated_at = now();
	PERFORM broadcast._pin_versions(b.workspace_id, tid);

	/* a test still queued for an address is replaced */
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = tid
	   AND q.email = ANY (ARRAY(SELECT lower(e) FROM unnest(send_test.emails) e))
	   AND (q.lease_until IS NULL OR q.lease_until <= now());
	RETURN QUERY
	INSERT INTO broadcast.email_queue AS q
		(workspace_id, broadcast_id, email, integration_id, list_id, variation, message_id, data_email)
	SELECT DISTINCT ON (lower(e)) b.workspace_id, tid, lower(e), b.integration_id,
		   coalesce(sample_list, b.lists[1], ''), send_test.variation::int2, broadcast._uuid_v7(), sample
	  FROM unnest(send_test.emails) e
	ON CONFLICT DO NOTHING
	RETURNING q.email, q.message_id;
	PERFORM broadcast._wake_senders();
END
$$;
COMMENT ON FUNCTION broadcast.send_test(text, text, text[], integer, text) IS
	'Sends a broadcast''s message now to up to 20 addresses, rendered with a sample contact''s data; kept out of its statistics';
