/*
 * Templates are capped at 512 kB (subject, html and text_body together):
 * each message composed from one holds a rendered copy, and a sender holds
 * as many of those as broadcast_engine.sender_batch_bytes allows.
 */

CREATE OR REPLACE FUNCTION broadcast.create_template(workspace_id text, template_id text, subject text, html text, text_body text DEFAULT NULL::text, from_email text DEFAULT NULL::text, from_name text DEFAULT NULL::text, reply_to text DEFAULT NULL::text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
	/* syntax, and every snippet rendered must exist in the workspace */
	PERFORM broadcast._template_snippets(create_template.workspace_id, subject, 'subject');
	PERFORM broadcast._template_snippets(create_template.workspace_id, html, 'html');
	PERFORM broadcast._template_snippets(create_template.workspace_id, text_body, 'text_body');

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
