CREATE OR REPLACE FUNCTION broadcast._ct_equal(a bytea, b bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_ct_equal';
