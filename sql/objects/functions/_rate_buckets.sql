/*
 * rate_limits(), as before, with three columns at the end: why an account
 * is paused (a quota used up, sending disabled), and for a workspace pair's
 * bucket, what its caps hold its mail back for and until when
 * (sending_caps).  The buckets are read from shared memory by
 * _rate_buckets(), the C function rate_limits() was until 1.3.
 */
CREATE OR REPLACE FUNCTION broadcast._rate_buckets(
	OUT scope text, OUT workspace_id text, OUT integration_id text,
	OUT rate_per_second float8, OUT tokens float8, OUT paused_until timestamptz,
	OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint,
	OUT paused_reason text)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_rate_limits';

REVOKE ALL ON FUNCTION broadcast._rate_buckets() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast._rate_buckets() TO broadcast_admin;
