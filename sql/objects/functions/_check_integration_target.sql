/* raises unless the sender may connect there under the current settings (src/endpoint.c) */

CREATE OR REPLACE FUNCTION broadcast._check_integration_target(endpoint text, smtp_host text, smtp_tls text) RETURNS void
    LANGUAGE c STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS 'MODULE_PATHNAME', 'be_check_integration_target';
