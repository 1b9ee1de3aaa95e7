CREATE OR REPLACE FUNCTION broadcast.rate_limits(
	OUT scope text, OUT workspace_id text, OUT integration_id text,
	OUT rate_per_second float8, OUT tokens float8, OUT paused_until timestamptz,
	OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint,
	OUT paused_reason text, OUT waiting_for text, OUT waiting_until timestamptz)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT r.scope, r.workspace_id, r.integration_id, r.rate_per_second, r.tokens, r.paused_until,
		   r.breaker, r.consecutive_failures, r.granted, r.throttled, r.paused_reason, c.waiting_for, c.waiting_until
	  FROM broadcast._rate_buckets() r
	  LEFT JOIN broadcast.sending_caps c
			 ON r.scope = 'workspace' AND c.workspace_id = r.workspace_id
			AND c.integration_id = r.integration_id
$$;

REVOKE ALL ON FUNCTION broadcast.rate_limits() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.rate_limits() TO broadcast_admin;

COMMENT ON FUNCTION broadcast.rate_limits() IS
	'Token buckets, Retry-After and account pauses with their reason, circuit breakers (shared memory), and what a pair''s caps hold its mail back for';
