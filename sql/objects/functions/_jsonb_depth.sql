/* ------------------------------------------------------------------------
 * Contact properties: nested at most 28 levels
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast._jsonb_depth(value jsonb) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_jsonb_depth';
