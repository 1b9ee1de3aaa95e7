/*
 * Compiles one node of a definition into a boolean SQL expression over
 * broadcast.contacts c, validating it on the way.  p_check also checks that
 * named lists and broadcasts exist (on save; at expansion a list dropped
 * since then simply has no members).  Every leaf is wrapped in coalesce(...,
 * false) so that "not" of a condition on a missing value is true.
 */
CREATE OR REPLACE FUNCTION broadcast._segment_sql(p_workspace_id text, p_node jsonb, p_path text,
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
