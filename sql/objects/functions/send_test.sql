CREATE OR REPLACE FUNCTION broadcast.send_test(workspace_id text, broadcast_id text, emails text[],
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
