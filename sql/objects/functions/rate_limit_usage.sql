/*
 * The shared rate-limit table reports how full it is.  Since 1.3 it evicts
 * idle buckets and fails closed when full (src/ratelimit.c): a pair that
 * finds no slot is held back, never sent without a limit or a breaker.
 */

CREATE OR REPLACE FUNCTION broadcast.rate_limit_usage(OUT buckets integer, OUT in_use integer, OUT idle integer, OUT refused bigint) RETURNS record
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'be_rate_limit_usage';

COMMENT ON FUNCTION broadcast.rate_limit_usage(OUT buckets integer, OUT in_use integer, OUT idle integer, OUT refused bigint) IS 'Slots of the shared rate-limit table, those in use and idle, and acquisitions refused because it was full';

REVOKE ALL ON FUNCTION broadcast.rate_limit_usage(OUT buckets integer, OUT in_use integer, OUT idle integer, OUT refused bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.rate_limit_usage(OUT buckets integer, OUT in_use integer, OUT idle integer, OUT refused bigint) TO broadcast_admin;
