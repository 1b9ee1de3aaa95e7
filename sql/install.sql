-- Install, and check that 1.0 + ALTER EXTENSION UPDATE equals a fresh install.
SET client_min_messages = warning;
CREATE SCHEMA catalog_check;

-- Everything that makes up the extension's catalog, without OIDs.
CREATE FUNCTION catalog_check.snapshot()
RETURNS SETOF text
LANGUAGE sql
AS $$
	-- member objects
	SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	 WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'broadcast_engine'
	UNION ALL
	-- columns, with their position among the table's live columns (COPY without a column list)
	SELECT format('column %s.%s #%s %s notnull=%s default=%s', c.relname, a.attname,
				  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
				  format_type(a.atttypid, a.atttypmod), a.attnotnull,
				  pg_get_expr(ad.adbin, ad.adrelid))
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	 WHERE n.nspname = 'broadcast' AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	-- constraints
	SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
	  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
	  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'broadcast'
	UNION ALL
	-- indexes, storage options, row security, grants
	SELECT format('index %s', pg_get_indexdef(i.indexrelid))
	  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'broadcast'
	UNION ALL
	SELECT format('relation %s kind=%s options=%s rls=%s acl=%s', c.relname, c.relkind,
				  c.reloptions, c.relrowsecurity, c.relacl)
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'broadcast'
	UNION ALL
	SELECT format('policy %s.%s %s %s %s', p.tablename, p.policyname, p.cmd, p.qual, p.with_check)
	  FROM pg_policies p WHERE p.schemaname = 'broadcast'
	UNION ALL
	SELECT format('trigger %s', pg_get_triggerdef(t.oid))
	  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'broadcast' AND NOT t.tgisinternal
	UNION ALL
	-- functions: full definition and privileges
	SELECT format('function %s md5=%s acl=%s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid)), p.proacl)
	  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'broadcast'
	UNION ALL
	SELECT format('view %s %s', c.relname, md5(pg_get_viewdef(c.oid)))
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'broadcast' AND c.relkind IN ('v', 'm')
$$;

CREATE EXTENSION broadcast_engine;
SELECT extversion FROM pg_extension WHERE extname = 'broadcast_engine';
CREATE TABLE catalog_check.fresh AS SELECT catalog_check.snapshot() AS item;
DROP EXTENSION broadcast_engine;

CREATE EXTENSION broadcast_engine VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'broadcast_engine';
-- the stats indexes arrive with 1.1
SELECT count(*) AS stats_indexes FROM pg_indexes
 WHERE schemaname = 'broadcast' AND indexname LIKE 'message_history_broadcast%';
ALTER EXTENSION broadcast_engine UPDATE TO '1.1';
SELECT count(*) AS stats_indexes FROM pg_indexes
 WHERE schemaname = 'broadcast' AND indexname LIKE 'message_history_broadcast%';
-- 1.2: the queue's lease column, and the stats index the wider one covers is gone
ALTER EXTENSION broadcast_engine UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'broadcast_engine';
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'broadcast.email_queue'::regclass AND attname = 'lease_until';
SELECT reloptions FROM pg_class WHERE oid = 'broadcast.email_queue'::regclass;
CREATE TABLE catalog_check.upgraded AS SELECT catalog_check.snapshot() AS item;

-- sanity: the snapshot sees the whole schema
SELECT count(*) > 200 AS snapshot_is_substantial FROM catalog_check.fresh;
-- what a fresh install has that an upgraded one lacks, and the reverse: both empty
(SELECT 'only fresh' AS side, item FROM catalog_check.fresh
 EXCEPT ALL SELECT 'only fresh', item FROM catalog_check.upgraded)
UNION ALL
(SELECT 'only upgraded', item FROM catalog_check.upgraded
 EXCEPT ALL SELECT 'only upgraded', item FROM catalog_check.fresh)
ORDER BY 1, 2;

-- the history's indexes: the primary key and the contact's, nothing per broadcast or provider id
SELECT indexdef FROM pg_indexes
 WHERE schemaname = 'broadcast' AND indexname LIKE 'message_history%' ORDER BY 1;
DROP SCHEMA catalog_check CASCADE;
