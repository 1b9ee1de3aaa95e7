/* the scheduler and sender workers running now, from shared memory */

CREATE OR REPLACE FUNCTION broadcast.worker_status(OUT kind text, OUT slot integer, OUT pid integer, OUT started_at timestamp with time zone, OUT last_active timestamp with time zone, OUT transactions bigint, OUT messages bigint, OUT batches bigint, OUT claim_ms double precision, OUT render_ms double precision, OUT send_ms double precision, OUT record_ms double precision) RETURNS SETOF record
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'be_worker_status';

REVOKE ALL ON FUNCTION broadcast.worker_status(OUT kind text, OUT slot integer, OUT pid integer, OUT started_at timestamp with time zone, OUT last_active timestamp with time zone, OUT transactions bigint, OUT messages bigint, OUT batches bigint, OUT claim_ms double precision, OUT render_ms double precision, OUT send_ms double precision, OUT record_ms double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION broadcast.worker_status(OUT kind text, OUT slot integer, OUT pid integer, OUT started_at timestamp with time zone, OUT last_active timestamp with time zone, OUT transactions bigint, OUT messages bigint, OUT batches bigint, OUT claim_ms double precision, OUT render_ms double precision, OUT send_ms double precision, OUT record_ms double precision) TO broadcast_admin;
