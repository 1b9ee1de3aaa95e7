/* a complete RFC 5322 message from its parts (previews, tests) */

CREATE OR REPLACE FUNCTION broadcast.build_message(parts jsonb) RETURNS text
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'be_build_message';
