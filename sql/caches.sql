-- the senders' caches: triggers that move the cache generation, incarnations
SET client_min_messages = warning;
SELECT broadcast.create_workspace('cw', 'Caches', 'UTC', '{"default_from_email": "a@example.com"}');
SELECT broadcast.create_list('cw', 'l', 'Readers');
SELECT broadcast.create_template('cw', 't', 'Hi', '<p>Hi</p>');
SELECT broadcast.create_integration('cw', 'm', 'smtp', '{"host": "smtp.example.com", "port": 587}', 'pw');
SELECT broadcast.create_broadcast('cw', 'b', 'B', '{l}', 'm', 't');

-- every table a sender caches rows of has the trigger, for every event
SELECT c.relname, t.tgname,
       (t.tgtype & 4) <> 0 AS ins, (t.tgtype & 8) <> 0 AS del, (t.tgtype & 16) <> 0 AS upd,
       (t.tgtype & 32) <> 0 AS trunc,
       /* column names: their numbers differ between a fresh and an upgraded install */
       (SELECT string_agg(a.attname, ' ' ORDER BY a.attname) FROM pg_attribute a
         WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr)) AS update_of
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgfoid = 'broadcast._bump_generation'::regproc
 ORDER BY 1, 2;

-- the broadcasts trigger fires for what a composer reads, not for counters
CREATE FUNCTION pg_temp.bumps(stmt text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	before bigint := coalesce(pg_stat_get_xact_function_calls('broadcast._bump_generation'::regproc), 0);
BEGIN
	EXECUTE stmt;
	RETURN coalesce(pg_stat_get_xact_function_calls('broadcast._bump_generation'::regproc), 0) - before;
END
$$;
BEGIN;
SET LOCAL track_functions = 'all';
SELECT pg_temp.bumps($$UPDATE broadcast.broadcasts SET sent_count = sent_count + 1, updated_at = now() WHERE workspace_id = 'cw'$$) AS counters,
       pg_temp.bumps($$UPDATE broadcast.broadcasts SET status = status WHERE workspace_id = 'cw'$$) AS status,
       pg_temp.bumps($$UPDATE broadcast.broadcasts SET name = 'B2' WHERE workspace_id = 'cw'$$) AS name,
       pg_temp.bumps($$UPDATE broadcast.workspaces SET settings = settings WHERE workspace_id = 'cw'$$) AS settings,
       pg_temp.bumps($$SELECT broadcast.update_integration('cw', 'm', secret => 'pw2')$$) AS update_integration;
ROLLBACK;

-- not callable by itself
SELECT broadcast._bump_generation();

-- a change the senders must learn of cannot be prepared for two-phase commit
BEGIN;
SELECT broadcast.create_template('cw', 't2', 'Hi', '<p>Hi</p>');
PREPARE TRANSACTION 'cw_template';
SELECT count(*) AS not_kept FROM broadcast.templates WHERE workspace_id = 'cw' AND template_id = 't2';

-- an incarnation per created row: kept by update_integration, new when made again
CREATE TEMP TABLE inc AS
SELECT incarnation FROM broadcast.integrations WHERE workspace_id = 'cw' AND integration_id = 'm';
SELECT broadcast.update_integration('cw', 'm', secret => 'pw3', rate_per_second => 5);
SELECT i.incarnation = inc.incarnation AS kept FROM broadcast.integrations i, inc
 WHERE i.workspace_id = 'cw' AND i.integration_id = 'm';
SELECT broadcast.drop_workspace('cw');
SELECT broadcast.create_workspace('cw', 'Caches again');
SELECT broadcast.create_integration('cw', 'm', 'smtp', '{"host": "smtp.example.com", "port": 587}', 'pw');
SELECT i.incarnation <> inc.incarnation AS renewed FROM broadcast.integrations i, inc
 WHERE i.workspace_id = 'cw' AND i.integration_id = 'm';
SELECT broadcast.create_shared_integration('cw_shared', 'smtp', '{"host": "smtp.example.com", "port": 587}');
SELECT incarnation IS NOT NULL AS has_incarnation FROM broadcast.shared_integrations WHERE shared_id = 'cw_shared';
SELECT broadcast.drop_workspace('cw');
DELETE FROM broadcast.shared_integrations WHERE shared_id = 'cw_shared';
