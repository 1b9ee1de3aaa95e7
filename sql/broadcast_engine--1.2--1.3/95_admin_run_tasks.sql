/*
 * CALL broadcast.run_tasks() runs the scheduler's steps as the calling role,
 * and every claim starts with broadcast._hold_restored() (10_backup.sql),
 * which is revoked from PUBLIC.  Without this grant only superusers could
 * drive the engine with run_tasks; the documented callers are members of
 * broadcast_admin (pg_cron jobs, a PgBouncer client: test_pgbouncer.py).
 */
GRANT EXECUTE ON FUNCTION broadcast._hold_restored() TO broadcast_admin;
