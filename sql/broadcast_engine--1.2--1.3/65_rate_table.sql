/*
 * 65_rate_table: the shared rate-limit table reports how full it is
 * (functions/rate_limit_usage.sql).  Since 1.3 it evicts idle buckets and
 * fails closed when full (src/ratelimit.c).
 */
REVOKE ALL ON FUNCTION broadcast.rate_limit_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.rate_limit_usage() TO broadcast_admin;
COMMENT ON FUNCTION broadcast.rate_limit_usage() IS
	'Slots of the shared rate-limit table, those in use and idle, and acquisitions refused because it was full';
