/* the text part a message gets when its template has no text body */

CREATE OR REPLACE FUNCTION broadcast.html_to_text(html text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_html_to_text';
