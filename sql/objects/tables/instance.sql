/*
 * One row, written by CREATE EXTENSION and by this upgrade, and never
 * dumped: a restore gets a fresh one.  Physical copies (pg_upgrade, base
 * backups, standbys) carry it with the data files: they are the same
 * database and keep sending.  history_maintained_at is when
 * maintain_history() last ran from the scheduler (_maintain_history_due).
 */

CREATE TABLE broadcast.instance (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	nonce		uuid NOT NULL DEFAULT gen_random_uuid(),
	created_at	timestamptz NOT NULL DEFAULT now(),
	history_maintained_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE broadcast.instance IS 'This database''s nonce; rows scheduled under another one come from a restore and are held';

GRANT SELECT ON TABLE broadcast.instance TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.instance TO broadcast_admin;
