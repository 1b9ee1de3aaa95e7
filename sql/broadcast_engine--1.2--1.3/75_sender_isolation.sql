/*
 * 75_sender_isolation: a pair (workspace, integration) whose work keeps
 * failing is isolated by the senders, not allowed to stop them (issue 12,
 * item 1), and a template is capped in size at save (item 5).
 *
 * broadcast.isolated_pairs (a view over isolated_pair_status()) lists the pairs the senders skip for now, with
 * the error that made them, read from shared memory (src/isolation.c).
 */
CREATE FUNCTION broadcast.isolated_pair_status(
	OUT workspace_id text, OUT integration_id text, OUT failures integer,
	OUT last_error text, OUT sqlstate text, OUT since timestamptz, OUT retry_at timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_isolated_pairs';
REVOKE ALL ON FUNCTION broadcast.isolated_pair_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.isolated_pair_status() TO broadcast_admin;
COMMENT ON FUNCTION broadcast.isolated_pair_status() IS
	'Pairs (workspace, integration) the senders skip until retry_at, after failures in a row; the last error says why';

CREATE VIEW broadcast.isolated_pairs AS
SELECT s.workspace_id, s.integration_id, s.failures, s.last_error, s.sqlstate, s.since, s.retry_at
  FROM broadcast.isolated_pair_status() s;
REVOKE ALL ON broadcast.isolated_pairs FROM PUBLIC;
GRANT SELECT ON broadcast.isolated_pairs TO broadcast_admin;
COMMENT ON VIEW broadcast.isolated_pairs IS
	'Pairs (workspace, integration) the senders skip for now, with their last error; empty when all is well';

/*
 * Templates are capped at 512 kB (subject, html and text_body together):
 * each message composed from one holds a rendered copy, and a sender holds
 * as many of those as broadcast_engine.sender_batch_bytes allows.
 */
CREATE OR REPLACE FUNCTION broadcast.create_template(
	workspace_id text,
	template_id text,
	subject text,
	html text,
	text_body text DEFAULT NULL,
	from_email text DEFAULT NULL,
	from_name text DEFAULT NULL,
	reply_to text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v integer;
BEGIN
	PERFORM broadcast._authorize_caller(create_template.workspace_id);
	PERFORM broadcast._check_id('template', create_template.template_id);
	IF subject IS NULL OR btrim(subject) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'template subject must not be empty';
	END IF;
	IF html IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'template html must not be NULL';
	END IF;
	/* every byte of a template is held by each message a sender composes from it */
	IF pg_catalog.octet_length(subject) + pg_catalog.octet_length(html)
	   + coalesce(pg_catalog.octet_length(text_body), 0) > 524288 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('template is too large: %s bytes of subject, html and text_body, at most 524288',
							 pg_catalog.octet_length(subject) + pg_catalog.octet_length(html)
							 + coalesce(pg_catalog.octet_length(text_body), 0)),
			HINT = 'Move images and other large content to URLs the message links to.';
	END IF;
	PERFORM broadcast._check_header_text('subject', subject);
	PERFORM broadcast._check_header_text('from_name', from_name);
	IF from_email IS NOT NULL THEN
		PERFORM broadcast._check_email(from_email, 'from_email');
	END IF;
	IF reply_to IS NOT NULL THEN
		PERFORM broadcast._check_email(reply_to, 'reply_to');
	END IF;
	PERFORM broadcast._check_template_syntax(subject, html, text_body);

	/* serialise version numbering per template without blocking other templates */
	PERFORM pg_advisory_xact_lock(hashtext('broadcast.templates'),
								  hashtext(create_template.workspace_id || '/' || create_template.template_id));
	SELECT coalesce(max(t.version), 0) + 1 INTO v
	  FROM broadcast.templates t
	 WHERE t.workspace_id = create_template.workspace_id AND t.template_id = create_template.template_id;

	INSERT INTO broadcast.templates
		(workspace_id, template_id, version, subject, html, text_body, from_email, from_name, reply_to)
	VALUES (create_template.workspace_id, create_template.template_id, v, subject, html, text_body,
			lower(from_email), from_name, lower(reply_to));
	RETURN v;
END
$$;
