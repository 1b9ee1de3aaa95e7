/*
 * 90_search_path: no engine function depends on the caller's search_path
 * (issue 11, section 5).  Keep this file LAST: it pins every function of the
 * schema, including those the files before it add.
 *
 * A function without a pinned search_path resolves operators, functions and
 * types in its body through the caller's search_path.  A tenant that can
 * create objects in a schema of its own could define "=" or "~" for text,
 * put that schema first, and make the row level security helpers (and the
 * CHECK constraints' validators) answer what it likes: read, change and
 * delete another workspace's rows, or store invalid addresses.
 *
 * Every SQL and PL/pgSQL function of the schema gets
 * SET search_path = pg_catalog, pg_temp, except the few below that must stay
 * inlinable (a pinned SQL function is never inlined): the CHECK validators,
 * run for every row written, and broadcast_stats, whose plan must reach the
 * history indexes.  Their bodies name every operator,
 * function, type and table with its schema (OPERATOR(pg_catalog.=),
 * pg_catalog.length, pg_catalog.numeric), and use no construct that looks an
 * operator up by name (IN, NULLIF, simple CASE), so parsing them under any
 * search_path gives the same expression.  The "search_path" regression test
 * lists unpinned functions and attacks these.
 */

CREATE OR REPLACE FUNCTION broadcast.is_valid_email(email text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $_$
	SELECT pg_catalog.length(email) OPERATOR(pg_catalog.<=) 254
	   AND email OPERATOR(pg_catalog.~) '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
	   AND email OPERATOR(pg_catalog.!~) '(^\.|\.\.|\.@)'
$_$;

COMMENT ON FUNCTION broadcast.is_valid_email(email text) IS 'True when the address is a plain ASCII addr-spec the engine will send to';
