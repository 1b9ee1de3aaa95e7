/* ------------------------------------------------------------------------
 * The parser and the token check (src/bounce_sql.c)
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION broadcast._bounce_parse(raw bytea)
RETURNS jsonb
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_bounce_parse';

COMMENT ON FUNCTION broadcast._bounce_parse(bytea) IS
	'What a returned message reports: kind, class, recipients, VERP tokens, the returned Message-ID';

REVOKE ALL ON FUNCTION broadcast._bounce_parse(bytea) FROM PUBLIC;
