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

/* workspaces the current role was granted (directly or through a group) */
CREATE OR REPLACE FUNCTION broadcast.my_workspaces()
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT g.workspace_id
	  FROM broadcast.workspace_grants g
	  JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) g.role_name
	 WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER')
$$;

/*
 * Whether role p_role holds a grant on the workspace, directly or through a
 * group.  A grant names a role that may not exist here (a restore before
 * the roles were created): the join on pg_roles skips it, where
 * pg_has_role(name) would raise an error.
 */
CREATE FUNCTION broadcast._has_grant(p_role name, p_workspace_id text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT 1 FROM broadcast.workspace_grants g
					 JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) g.role_name
					WHERE g.workspace_id OPERATOR(pg_catalog.=) p_workspace_id
					  AND pg_catalog.pg_has_role(p_role, r.oid, 'MEMBER'))
$$;

/* _authorize_caller matches grants through _role_has_workspace_access (30_caller.sql) */

CREATE OR REPLACE FUNCTION broadcast.grant_workspace(workspace_id text, role regrole)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('grant workspace access');
	PERFORM broadcast._authorize(grant_workspace.workspace_id);
	IF role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be NULL';
	END IF;
	INSERT INTO broadcast.workspace_grants (workspace_id, role_name)
	SELECT grant_workspace.workspace_id, r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = role::oid
	ON CONFLICT DO NOTHING;
	EXECUTE format('GRANT broadcast_user TO %s', role);
END
$$;

CREATE OR REPLACE FUNCTION broadcast.revoke_workspace(workspace_id text, role regrole)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('revoke workspace access');
	DELETE FROM broadcast.workspace_grants g
	 WHERE g.workspace_id = revoke_workspace.workspace_id
	   AND g.role_name = (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = role::oid);
END
$$;

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
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE broadcast.instance IS
	'This database''s nonce; rows scheduled under another one come from a restore and are held';
INSERT INTO broadcast.instance DEFAULT VALUES;
GRANT SELECT ON broadcast.instance TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.instance TO broadcast_admin;

CREATE FUNCTION broadcast._instance_nonce()
RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT i.nonce FROM broadcast.instance i $$;

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

/* scheduling is an act of this database: it records the current nonce */
CREATE FUNCTION broadcast._broadcasts_stamp_nonce()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.instance_nonce := broadcast._instance_nonce();
	RETURN NEW;
END
$$;
CREATE TRIGGER broadcasts_stamp_nonce BEFORE UPDATE OF status ON broadcast.broadcasts
	FOR EACH ROW WHEN (NEW.status = 'scheduled' AND OLD.status IN ('draft', 'scheduled'))
	EXECUTE FUNCTION broadcast._broadcasts_stamp_nonce();

/* the reason a held broadcast shows in last_error */
CREATE FUNCTION broadcast._restore_hold_reason()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'held: restored from a backup or copied from another database; '
		   'call broadcast.resume_after_restore() to send'
$$;

/*
 * Turns rows that came from another database into a visible hold; called by
 * the scheduler at the start of every cycle (and so by run_tasks).  Cheap
 * when there is nothing to do: two empty scans of broadcasts_instance_idx.
 *  - broadcasts in flight (scheduled, sending, testing, waiting for a
 *    winner) are paused with the reason in last_error;
 *  - every live task of a foreign broadcast is paused (tasks may be loaded
 *    after their broadcast was held);
 *  - drafts, and ended broadcasts with nothing left in the queue, are
 *    adopted silently (they send nothing);
 *  - ended broadcasts with rows still queued keep the foreign nonce (the
 *    senders skip those rows) and show the reason;
 *  - broadcasts paused by hand stay as they are (the senders skip them).
 * Returns the number of broadcasts it held.
 */
CREATE FUNCTION broadcast._hold_restored()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cur uuid := broadcast._instance_nonce();
	n bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.broadcasts b
					WHERE b.instance_nonce < cur OR b.instance_nonce > cur) THEN
		RETURN 0;
	END IF;
	WITH foreign_b AS (
		SELECT b.workspace_id, b.broadcast_id, b.status,
			   EXISTS (SELECT 1 FROM broadcast.email_queue q
						WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
						  AND q.status IN ('pending', 'sending')) AS queued
		  FROM broadcast.broadcasts b
		 WHERE (b.instance_nonce < cur OR b.instance_nonce > cur)
		   AND (b.status IN ('draft', 'scheduled', 'processing', 'testing', 'test_completed',
							 'winner_selected')
				OR (b.status IN ('completed', 'cancelled', 'failed')
					AND b.last_error IS DISTINCT FROM broadcast._restore_hold_reason()))
		   FOR UPDATE OF b
	), changed AS (
		UPDATE broadcast.broadcasts b
		   SET instance_nonce = CASE WHEN f.status = 'draft' OR NOT f.queued AND f.status IN
											('completed', 'cancelled', 'failed')
									 THEN cur ELSE b.instance_nonce END,
			   status = CASE WHEN f.status IN ('draft', 'completed', 'cancelled', 'failed')
							 THEN b.status ELSE 'paused' END,
			   paused_from = CASE WHEN f.status IN ('draft', 'completed', 'cancelled', 'failed')
								  THEN b.paused_from ELSE f.status END,
			   paused_at = CASE WHEN f.status IN ('draft', 'completed', 'cancelled', 'failed')
								THEN b.paused_at ELSE now() END,
			   last_error = CASE WHEN f.status = 'draft' OR NOT f.queued AND f.status IN
										('completed', 'cancelled', 'failed')
								 THEN b.last_error ELSE broadcast._restore_hold_reason() END,
			   updated_at = now()
		  FROM foreign_b f
		 WHERE b.workspace_id = f.workspace_id AND b.broadcast_id = f.broadcast_id
		RETURNING f.status
	)
	SELECT count(*) FILTER (WHERE status NOT IN ('draft', 'completed', 'cancelled', 'failed'))
	  INTO n FROM changed;

	UPDATE broadcast.tasks t
	   SET status = 'paused', lease_until = NULL, lease_token = NULL, updated_at = now()
	  FROM broadcast.broadcasts b
	 WHERE (b.instance_nonce < cur OR b.instance_nonce > cur)
	   AND t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running');
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION broadcast._hold_restored() FROM PUBLIC;
/*
 * CALL broadcast.run_tasks() runs the scheduler's steps as the calling role
 * and every claim starts here: its documented callers are members of
 * broadcast_admin (pg_cron jobs, a PgBouncer client: test_pgbouncer.py).
 */
GRANT EXECUTE ON FUNCTION broadcast._hold_restored() TO broadcast_admin;

/*
 * The operator's word that a restored copy may send: adopts every row of
 * the workspace (or of all workspaces) that came from another database and
 * resumes the broadcasts the hold paused.  Broadcasts that were paused by
 * hand before the dump stay paused.  Returns the number resumed.
 */
CREATE FUNCTION broadcast.resume_after_restore(workspace_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cur uuid := broadcast._instance_nonce();
	n bigint;
BEGIN
	PERFORM broadcast._require_admin('resume broadcasts after a restore');
	IF resume_after_restore.workspace_id IS NOT NULL THEN
		PERFORM broadcast._authorize(resume_after_restore.workspace_id);
	END IF;
	/* first turn every foreign row into the hold, so what follows sees one state */
	PERFORM broadcast._hold_restored();
	WITH foreign_b AS (
		SELECT b.workspace_id, b.broadcast_id, b.status, b.paused_from,
			   b.status = 'paused' AND b.last_error = broadcast._restore_hold_reason() AS held
		  FROM broadcast.broadcasts b
		 WHERE (b.instance_nonce < cur OR b.instance_nonce > cur)
		   AND (resume_after_restore.workspace_id IS NULL
				OR b.workspace_id = resume_after_restore.workspace_id)
		   FOR UPDATE OF b
	), resumed AS (
		UPDATE broadcast.broadcasts b
		   SET instance_nonce = cur,
			   status = CASE WHEN f.held THEN b.paused_from ELSE b.status END,
			   paused_from = CASE WHEN f.held THEN NULL ELSE b.paused_from END,
			   paused_at = CASE WHEN f.held THEN NULL ELSE b.paused_at END,
			   last_error = CASE WHEN b.last_error = broadcast._restore_hold_reason() THEN NULL
								 ELSE b.last_error END,
			   updated_at = now()
		  FROM foreign_b f
		 WHERE b.workspace_id = f.workspace_id AND b.broadcast_id = f.broadcast_id
		RETURNING b.workspace_id, b.broadcast_id, f.held, f.paused_from
	), tasks_resumed AS (
		/* as resume_broadcast: a broadcast held before it started keeps its send time */
		UPDATE broadcast.tasks t
		   SET status = 'pending', updated_at = now(),
			   run_at = CASE WHEN r.paused_from = 'scheduled' THEN greatest(t.run_at, now()) ELSE now() END
		  FROM resumed r
		 WHERE r.held AND t.workspace_id = r.workspace_id AND t.broadcast_id = r.broadcast_id
		   AND t.status = 'paused'
	), queue_now AS (
		/* rows leased by a sender of the old database are due again now */
		UPDATE broadcast.email_queue q
		   SET lease_until = NULL, next_attempt_at = least(q.next_attempt_at, now())
		  FROM resumed r
		 WHERE r.held AND q.workspace_id = r.workspace_id AND q.broadcast_id = r.broadcast_id
		   AND q.status IN ('pending', 'sending') AND q.lease_until IS NOT NULL
	)
	SELECT count(*) FILTER (WHERE held) INTO n FROM resumed;
	PERFORM broadcast._wake_scheduler();
	PERFORM broadcast._wake_senders();
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION broadcast.resume_after_restore(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.resume_after_restore(text) TO broadcast_admin;
