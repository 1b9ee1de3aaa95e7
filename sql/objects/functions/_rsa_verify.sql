CREATE OR REPLACE FUNCTION broadcast._rsa_verify(cert_pem text, data bytea, signature bytea, digest text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_rsa_verify';
