CREATE OR REPLACE FUNCTION broadcast._check_certificate(cert_pem text) RETURNS void
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_check_certificate';
