CREATE OR REPLACE FUNCTION broadcast._check_template_syntax(subject text, html text, text_body text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	PERFORM broadcast._template_check(subject, 'subject');
	PERFORM broadcast._template_check(html, 'html');
	PERFORM broadcast._template_check(text_body, 'text_body');
END
$$;
