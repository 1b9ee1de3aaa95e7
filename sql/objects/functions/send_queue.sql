/*
 * Sends due queue rows (claim, render, send, record) in the calling session,
 * committing as it goes, for at most max_seconds.  With pg_cron:
 *   SELECT cron.schedule('broadcast-send', '* * * * *', 'CALL broadcast.send_queue(50)');
 */

CREATE OR REPLACE PROCEDURE broadcast.send_queue(IN max_seconds integer DEFAULT 50)
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'be_send_queue';

REVOKE ALL ON PROCEDURE broadcast.send_queue(IN max_seconds integer) FROM PUBLIC;
GRANT ALL ON PROCEDURE broadcast.send_queue(IN max_seconds integer) TO broadcast_admin;
