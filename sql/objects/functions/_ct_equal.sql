CREATE OR REPLACE FUNCTION broadcast._ct_equal(a bytea, b bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS '$libdir/broadcast_engine', 'be_ct_equal';
