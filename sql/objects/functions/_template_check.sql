/* raises a syntax error naming the field, line and column */

CREATE OR REPLACE FUNCTION broadcast._template_check(source text, field text) RETURNS void
    LANGUAGE c IMMUTABLE
    AS 'MODULE_PATHNAME', 'be_template_check';
