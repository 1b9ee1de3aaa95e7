/* token buckets, Retry-After pauses and circuit breakers, from shared memory */

CREATE OR REPLACE FUNCTION broadcast.rate_limits(OUT scope text, OUT workspace_id text, OUT integration_id text, OUT rate_per_second double precision, OUT tokens double precision, OUT paused_until timestamp with time zone, OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint) RETURNS SETOF record
    LANGUAGE c
    AS '$libdir/broadcast_engine', 'be_rate_limits';

REVOKE ALL ON FUNCTION broadcast.rate_limits(OUT scope text, OUT workspace_id text, OUT integration_id text, OUT rate_per_second double precision, OUT tokens double precision, OUT paused_until timestamp with time zone, OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.rate_limits(OUT scope text, OUT workspace_id text, OUT integration_id text, OUT rate_per_second double precision, OUT tokens double precision, OUT paused_until timestamp with time zone, OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint) TO broadcast_admin;
