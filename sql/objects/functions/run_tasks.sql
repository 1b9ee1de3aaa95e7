/*
 * Runs due tasks (audience expansion, A/B phases, completion) in the calling
 * session, committing as it goes, for at most max_seconds.  With pg_cron:
 *   SELECT cron.schedule('broadcast-tasks', '* * * * *', 'CALL broadcast.run_tasks(50)');
 */

CREATE OR REPLACE PROCEDURE broadcast.run_tasks(IN max_seconds integer DEFAULT 50)
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'be_run_tasks';

REVOKE ALL ON PROCEDURE broadcast.run_tasks(IN max_seconds integer) FROM PUBLIC;
GRANT ALL ON PROCEDURE broadcast.run_tasks(IN max_seconds integer) TO broadcast_admin;
