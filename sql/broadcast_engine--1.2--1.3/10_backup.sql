/*
 * Backups that restore, and a restored copy that does not send by surprise.
 *
 * 1. Every table holding user data or engine state is marked for pg_dump
 *    (pg_extension_config_dump), with the identity sequence of tasks, so a
 *    dump carries the rows and not only CREATE EXTENSION.
 * 2. Grants are stored by role name: an OID means nothing (or another role)
 *    in another cluster, while pg_dumpall --roles-only keeps the names.
 * 3. broadcast.instance holds a nonce written by CREATE EXTENSION (and by
 *    this upgrade) and never dumped.  Each broadcast records the nonce under
 *    which it was scheduled.  pg_upgrade, restarts, base backups and
 *    promoted standbys copy the data files, so the nonce and the rows agree
 *    and sending goes on.  A dump restored anywhere gets a fresh nonce from
 *    its CREATE EXTENSION, so its rows carry a nonce that is not current:
 *    the senders' and the scheduler's claims skip them at once, whatever
 *    order pg_restore loads the tables in, and the scheduler turns them into
 *    a visible hold until an administrator calls resume_after_restore().
 */

/* ---- which tables a dump carries ---------------------------------------- */

/* one call per statement: each call rewrites the pg_extension row */
DO $dump$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['workspaces', 'workspace_secrets', 'workspace_grants', 'contacts',
							 'lists', 'list_members', 'suppressions', 'templates',
							 'shared_integrations', 'integrations', 'integration_secrets',
							 'broadcasts', 'broadcast_variations', 'tasks', 'email_queue',
							 'message_history', 'pending_events', 'soft_bounces']
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(('broadcast.' || t)::regclass, '');
	END LOOP;
END
$dump$;
/* tasks.task_id is an identity column: its sequence's position is state too */
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('broadcast.tasks', 'task_id'), '');

/* ---- grants by role name ------------------------------------------------- */

ALTER TABLE broadcast.workspace_grants ADD COLUMN role_name name;
UPDATE broadcast.workspace_grants g SET role_name = r.rolname
  FROM pg_catalog.pg_roles r WHERE r.oid = g.role_oid;
/* a grant to a role dropped since granted nothing; by name it could grant a stranger */
DELETE FROM broadcast.workspace_grants WHERE role_name IS NULL;
ALTER POLICY own_grants ON broadcast.workspace_grants
	USING (broadcast.is_admin()
		   OR role_name IN (SELECT r.rolname FROM pg_catalog.pg_roles r
							 WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER')));
ALTER TABLE broadcast.workspace_grants DROP CONSTRAINT workspace_grants_pkey;
ALTER TABLE broadcast.workspace_grants DROP COLUMN role_oid;
ALTER TABLE broadcast.workspace_grants ALTER COLUMN role_name SET NOT NULL;
ALTER TABLE broadcast.workspace_grants ADD PRIMARY KEY (workspace_id, role_name);
COMMENT ON COLUMN broadcast.workspace_grants.role_name IS
	'The role by name, as pg_dumpall --roles-only recreates it in another cluster';

/* _authorize_caller matches grants through _role_has_workspace_access (30_caller.sql) */

/* ---- the instance nonce: a restored copy holds instead of sending -------- */

/*
 * One row, written by CREATE EXTENSION and by this upgrade, and never
 * dumped: a restore gets a fresh one.  Physical copies (pg_upgrade, base
 * backups, standbys) carry it with the data files: they are the same
 * database and keep sending.
 */
CREATE TABLE broadcast.instance (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	nonce		uuid NOT NULL DEFAULT gen_random_uuid(),
	created_at	timestamptz NOT NULL DEFAULT now(),
	history_maintained_at timestamptz NOT NULL DEFAULT now()	/* 89_history_partitions.sql */
);
COMMENT ON TABLE broadcast.instance IS
	'This database''s nonce; rows scheduled under another one come from a restore and are held';
INSERT INTO broadcast.instance DEFAULT VALUES;
GRANT SELECT ON broadcast.instance TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.instance TO broadcast_admin;

/* every existing row belongs to this database: an upgrade holds nothing */
DO $nonce$
BEGIN
	EXECUTE format('ALTER TABLE broadcast.broadcasts ADD COLUMN instance_nonce uuid NOT NULL DEFAULT %L',
				   broadcast._instance_nonce());
END
$nonce$;
ALTER TABLE broadcast.broadcasts ALTER COLUMN instance_nonce SET DEFAULT broadcast._instance_nonce();
COMMENT ON COLUMN broadcast.broadcasts.instance_nonce IS
	'broadcast.instance.nonce when it was created or scheduled; another value means a restored row';
/* the hold looks for rows whose nonce is not current: two empty index ranges when none */
CREATE INDEX broadcasts_instance_idx ON broadcast.broadcasts (instance_nonce);

CREATE TRIGGER broadcasts_stamp_nonce BEFORE UPDATE OF status ON broadcast.broadcasts
	FOR EACH ROW WHEN (NEW.status = 'scheduled' AND OLD.status IN ('draft', 'scheduled'))
	EXECUTE FUNCTION broadcast._broadcasts_stamp_nonce();

REVOKE ALL ON FUNCTION broadcast._hold_restored() FROM PUBLIC;
/*
 * CALL broadcast.run_tasks() runs the scheduler's steps as the calling role
 * and every claim starts here: its documented callers are members of
 * broadcast_admin (pg_cron jobs, a PgBouncer client: test_pgbouncer.py).
 */
GRANT EXECUTE ON FUNCTION broadcast._hold_restored() TO broadcast_admin;

REVOKE ALL ON FUNCTION broadcast.resume_after_restore(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.resume_after_restore(text) TO broadcast_admin;
