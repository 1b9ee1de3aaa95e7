-- Backups and replication: what pg_dump carries, grants by role name, the
-- hold on rows restored from another database (simulated here by giving this
-- database a new instance nonce, as a restore's CREATE EXTENSION does), and a
-- publication FOR ALL TABLES over the schema.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never

-- every table of the schema is dumped, except the instance nonce and the
-- audience lock's rows (no data: made again for each workspace); so is every sequence.
-- (message_history's monthly partitions are not extension members: pg_dump
-- writes them as plain tables, with their rows)
SELECT c.relname AS not_dumped
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'broadcast' AND c.relkind IN ('r', 'p', 'S')
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'broadcast_engine')::oid[])
   AND c.relname !~ '^message_history_p[0-9]{6}$'
 ORDER BY 1;
-- the partitions made at run time are not extension members; DEFAULT is one
SELECT c.relname, EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
							AND d.objid = c.oid AND d.deptype = 'e') AS member
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'broadcast.message_history'::regclass
   AND (c.relname = 'message_history_default'
		OR (c.relname ~ '^message_history_p[0-9]{6}$' AND EXISTS (SELECT 1 FROM pg_depend d
			 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')))
 ORDER BY 1;
-- and dumped whole: no filter
SELECT DISTINCT unnest(extcondition) AS condition FROM pg_extension WHERE extname = 'broadcast_engine';

-- every table has a primary key or a replica identity index (logical replication);
-- a partitioned table replicates through its partitions, which have them
SELECT c.relname AS no_replica_identity
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'broadcast' AND c.relkind = 'r'
   AND c.relreplident <> 'f'
   AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
					 AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident)))
 ORDER BY 1;

-- ---- grants by role name ----
CREATE ROLE bk_tenant;
CREATE ROLE bk_group;
CREATE ROLE bk_member IN ROLE bk_group;
SELECT broadcast.create_workspace('bk', 'Backup', 'UTC',
	'{"default_from_email": "news@bk.test", "unsubscribe_base_url": "https://bk.test/u"}');
SELECT broadcast.create_workspace('bk2', 'Other', 'UTC');
SELECT broadcast.grant_workspace('bk', 'bk_tenant');
SELECT broadcast.grant_workspace('bk2', 'bk_group');
SELECT workspace_id, role_name FROM broadcast.workspace_grants WHERE workspace_id LIKE 'bk%' ORDER BY 1, 2;
SET ROLE bk_tenant;
SELECT broadcast.my_workspaces();
SELECT workspace_id, role_name FROM broadcast.workspace_grants ORDER BY 1;
RESET ROLE;
-- through a group
SET ROLE bk_member;
SELECT broadcast.my_workspaces();
SELECT workspace_id FROM broadcast.workspaces ORDER BY 1;
RESET ROLE;
-- a grant naming a role that does not exist here (restored before the roles) errs nowhere and grants nothing
INSERT INTO broadcast.workspace_grants (workspace_id, role_name) VALUES ('bk', 'bk_not_created_yet');
SET ROLE bk_tenant;
SELECT broadcast.my_workspaces();
SELECT count(*) AS grants_seen FROM broadcast.workspace_grants;
RESET ROLE;
SELECT broadcast._has_grant('bk_tenant', 'bk') AS tenant, broadcast._has_grant('bk_member', 'bk2') AS member,
	   broadcast._has_grant('bk_member', 'bk') AS member_other;
-- once the role exists, the grant applies
CREATE ROLE bk_not_created_yet;
SELECT broadcast._has_grant('bk_not_created_yet', 'bk') AS now_granted;
SELECT broadcast.revoke_workspace('bk', 'bk_tenant');
SELECT broadcast.revoke_workspace('bk', 'bk_not_created_yet');
SELECT workspace_id, role_name FROM broadcast.workspace_grants WHERE workspace_id LIKE 'bk%' ORDER BY 1, 2;
SELECT broadcast.grant_workspace('bk', 'bk_tenant');

-- ---- the restore hold ----
SET broadcast_engine.allow_insecure_transport = on;
SELECT broadcast.create_list('bk', 'l', 'L');
SELECT broadcast.subscribe('bk', 'l', ARRAY['a@example.com', 'b@example.com', 'c@example.com']);
SELECT broadcast.create_template('bk', 't', 'Hi', '<p>Hi</p>');
-- nothing listens on port 9: a claimed row would be retried and counted in attempts
SELECT broadcast.create_integration('bk', 'smtp', 'smtp', '{"host": "127.0.0.1", "port": 9, "tls": "none"}');
SELECT broadcast.create_broadcast('bk', 'sending', 'Sending', '{l}', 'smtp', 't');
SELECT broadcast.create_broadcast('bk', 'later', 'Later', '{l}', 'smtp', 't');
SELECT broadcast.create_broadcast('bk', 'draft', 'Draft', '{l}', 'smtp', 't');
SELECT broadcast.create_broadcast('bk', 'byhand', 'By hand', '{l}', 'smtp', 't');
SELECT broadcast.schedule_broadcast('bk', 'sending') IS NOT NULL;
SELECT broadcast.schedule_broadcast('bk', 'byhand') IS NOT NULL;
CALL broadcast.run_tasks(5);
SELECT broadcast.schedule_broadcast('bk', 'later', now() + interval '1 day') IS NOT NULL;
SELECT broadcast.pause_broadcast('bk', 'byhand');
SELECT broadcast_id, status FROM broadcast.broadcasts WHERE workspace_id = 'bk' ORDER BY 1;
SELECT broadcast_id, count(*), sum(attempts) FROM broadcast.email_queue WHERE workspace_id = 'bk' GROUP BY 1 ORDER BY 1;
-- a queue row whose broadcast is not loaded (yet): never claimed
INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
VALUES ('bk', 'not_loaded', 'a@example.com', 'smtp', 'l', gen_random_uuid());

-- the restore: this database's nonce is not the one the rows were scheduled under
UPDATE broadcast.instance SET nonce = gen_random_uuid();
-- the senders skip the rows at once, before any hold was written
CALL broadcast.send_queue(1);
SELECT broadcast_id, count(*), sum(attempts) AS attempts FROM broadcast.email_queue WHERE workspace_id = 'bk' GROUP BY 1 ORDER BY 1;
SELECT broadcast_id, status FROM broadcast.broadcasts WHERE workspace_id = 'bk' ORDER BY 1;
-- the scheduler's cycle turns them into a visible hold
CALL broadcast.run_tasks(1);
SELECT broadcast_id, status, paused_from, last_error,
	   instance_nonce = broadcast._instance_nonce() AS adopted
  FROM broadcast.broadcasts WHERE workspace_id = 'bk' ORDER BY 1;
SELECT broadcast_id, status FROM broadcast.tasks WHERE workspace_id = 'bk' ORDER BY 1;
-- the hold stays: a second cycle changes nothing, the senders still skip
CALL broadcast.run_tasks(1);
CALL broadcast.send_queue(1);
SELECT broadcast_id, status, paused_from FROM broadcast.broadcasts WHERE workspace_id = 'bk' ORDER BY 1;
SELECT sum(attempts) AS attempts FROM broadcast.email_queue WHERE workspace_id = 'bk';
-- resume_broadcast does not lift the hold: the next cycle holds it again
SELECT broadcast.resume_broadcast('bk', 'sending');
CALL broadcast.send_queue(1);
SELECT sum(attempts) AS attempts FROM broadcast.email_queue WHERE workspace_id = 'bk';
CALL broadcast.run_tasks(1);
SELECT status, last_error IS NOT NULL AS reason FROM broadcast.broadcasts WHERE workspace_id = 'bk' AND broadcast_id = 'sending';
-- scheduling a restored draft is an act of this database
SELECT broadcast.schedule_broadcast('bk', 'draft', now() + interval '2 days') IS NOT NULL;
SELECT status, instance_nonce = broadcast._instance_nonce() AS current
  FROM broadcast.broadcasts WHERE workspace_id = 'bk' AND broadcast_id = 'draft';

-- only an administrator lifts the hold
SET ROLE bk_tenant;
SELECT broadcast.resume_after_restore('bk');
RESET ROLE;
SELECT broadcast.resume_after_restore('nope');
SELECT broadcast.resume_after_restore('bk') AS resumed;
SELECT broadcast_id, status, paused_from, last_error,
	   instance_nonce = broadcast._instance_nonce() AS adopted
  FROM broadcast.broadcasts WHERE workspace_id = 'bk' ORDER BY 1;
SELECT broadcast_id, status, run_at > now() + interval '12 hours' AS keeps_send_time
  FROM broadcast.tasks WHERE workspace_id = 'bk' ORDER BY 1;
-- the rows are claimed again (and fail against port 9)
SET broadcast_engine.retry_base = 0;
CALL broadcast.send_queue(1);
SELECT broadcast_id, bool_and(attempts > 0) AS tried FROM broadcast.email_queue
 WHERE workspace_id = 'bk' GROUP BY 1 ORDER BY 1;
SELECT broadcast.resume_after_restore() AS nothing_left;

-- ---- logical replication: a publication over every table ----
DELETE FROM broadcast.email_queue WHERE workspace_id = 'bk' AND broadcast_id = 'not_loaded';
CREATE PUBLICATION bk_pub FOR ALL TABLES;
-- an event parked before its message is recorded, applied (and deleted) by the history trigger
-- (events apply to messages of the integration they came through)
INSERT INTO broadcast.pending_events (workspace_id, integration_id, message_id, event, occurred_at)
VALUES ('bk', 'smtp', '00000000-0000-7000-8000-000000000001', 'delivered', now());
INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, integration_id, status, sent_at)
VALUES ('bk', '00000000-0000-7000-8000-000000000001', 'sending', 'a@example.com', 'smtp', 'sent', now());
SELECT count(*) AS parked FROM broadcast.pending_events WHERE workspace_id = 'bk';
SELECT delivered_at IS NOT NULL AS delivered FROM broadcast.message_history WHERE workspace_id = 'bk';
UPDATE broadcast.message_history SET opened_at = now() WHERE workspace_id = 'bk';
DELETE FROM broadcast.message_history WHERE workspace_id = 'bk';
-- and a whole workspace goes, through every table
SELECT broadcast.drop_workspace('bk');
SELECT broadcast.drop_workspace('bk2');
DROP PUBLICATION bk_pub;
DROP ROLE bk_tenant, bk_member, bk_group, bk_not_created_yet;
