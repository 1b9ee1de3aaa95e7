"""Backups that restore, and copies that do not send by surprise.

Covers: pg_dump -Fc (and --data-only, and -t) of a database with data in every table (contacts, lists,
a template, an SMTP integration, a sent broadcast's history, a broadcast
mid-send and one scheduled for later, suppressions, a grant to a tenant
role), restored into a fresh database of the same cluster and into a second
cluster after pg_dumpall --roles-only: row counts of every table equal, an
unsubscribe token minted before the dump verifies, the tenant role still
uses its workspace, the in-flight broadcast is held (paused with the reason,
nothing reaches the sink) until resume_after_restore, then completes with
each recipient exactly once.  A plain restart and a real pg_upgrade do not
hold a broadcast in flight.  The upgrade from 1.2 with data keeps every row,
holds nothing, completes the broadcast, and dumps with rows afterwards.
message_history is partitioned by month (1.3): history rows of two months
and one with a random id restore each exactly once, in the same partitions
(the run-time partitions are plain tables in the dump), --data-only through
the partition root, and the 1.2 update moves them into their months.
"""
import collections
import os
import subprocess
import time

from belib import DB, PGBIN, Cluster, as_postgres, wait_for
from test_sender import MOCKS, http, start_server

REASON = "resume_after_restore"


def tool(name, *args, cwd=None):
    r = as_postgres([os.path.join(PGBIN, name)] + list(args), cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s\n%s" % (name, r.stderr[-3000:], r.stdout[-3000:]))
    return r


def table_counts(db):
    """Row count of every table of schema broadcast, from the catalog (partitions counted in their root)."""
    names = [r[0] for r in db.q("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                " WHERE n.nspname = 'broadcast' AND c.relkind IN ('r', 'p')"
                                " AND NOT c.relispartition ORDER BY 1")]
    return {t: db.one("SELECT count(*) FROM broadcast.%s" % t) for t in names}


# history rows in two months (UTC): the previous one and this one, with UUIDv7 ids of their time
HISTORY_SQL = """INSERT INTO broadcast.message_history (workspace_id, message_id, email, status, created_at)
SELECT %s, (lpad(to_hex((extract(epoch FROM x.t) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(%s || i), 1, 3) || '8' || substr(md5(%s || i), 4, 15))::uuid,
       'h' || i || '@example.com', 'sent', x.t
  FROM generate_series(1, %s) i,
       LATERAL (SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month' * (i %% 2)
                        + interval '1 day' + interval '1 minute' * i) AT TIME ZONE 'UTC' AS t) x"""


def add_history(db, n, ws="acme", salt="s"):
    db.q(HISTORY_SQL, ws, salt, salt, n)


def history_state(db):
    """Every history row by id (each once?), and how many each partition holds."""
    ids = db.row("SELECT count(*), count(DISTINCT (workspace_id, message_id)),"
                 " md5(string_agg(workspace_id || message_id::text, ',' ORDER BY workspace_id, message_id))"
                 " FROM broadcast.message_history")
    parts = dict(db.q("SELECT tableoid::regclass::text, count(*) FROM broadcast.message_history GROUP BY 1"))
    return ids, parts


def sink_messages(sinkf):
    msgs = http("GET", "http://127.0.0.1:%s/_mock/messages" % sinkf["http"])
    return msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs


def per_recipient(sinkf, subject_prefix):
    c = collections.Counter()
    for m in sink_messages(sinkf):
        if (m.get("subject") or "").startswith(subject_prefix):
            for rcpt in m.get("recipients") or []:
                c[rcpt.lower()] += 1
    return c


def bstatus(db, bid, ws="acme"):
    return db.row("SELECT status, sent_count, last_error, paused_from FROM broadcast.broadcasts"
                  " WHERE workspace_id = %s AND broadcast_id = %s", ws, bid)


def populate(db, sink_port, ws="acme", n=300, rate=None):
    db.q("""SELECT broadcast.create_workspace(%s, 'Acme', 'UTC', '{"sending_domain": "news.example.test",
            "unsubscribe_base_url": "https://example.test/u", "default_from_email": "news@example.test"}')""", ws)
    db.q("SELECT broadcast.create_list(%s, 'l', 'Readers')", ws)
    db.q("SELECT broadcast.create_list(%s, 'vip', 'VIP')", ws)
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)
            SELECT %s, 'r' || i || '@example.com', 'Name' || i, jsonb_build_object('n', i)
              FROM generate_series(1, %s) i""", ws, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'l', 'r' || i || '@example.com' FROM generate_series(1, %s) i""", ws, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'vip', 'r' || i || '@example.com' FROM generate_series(1, 20) i""", ws)
    # an address outside the big list, for unsubscribe tokens
    db.q("SELECT broadcast.subscribe(%s, 'vip', ARRAY['solo@example.com'])", ws)
    db.q("""INSERT INTO broadcast.suppressions (workspace_id, email, reason)
            VALUES (%s, 'gone1@example.com', 'hard_bounce'), (%s, 'gone2@example.com', 'complaint')""", ws, ws)
    for t in ("B0", "B1", "B2"):
        db.q("SELECT broadcast.create_template(%s, %s, %s, '<p>Hi {{ contact.first_name }}</p>')",
             ws, t.lower(), t + " for {{ contact.first_name }}")
    db.q("SELECT broadcast.create_integration(%s, 'smtp', 'smtp', %s, NULL, %s)",
         ws, '{"host": "127.0.0.1", "port": %s, "tls": "none"}' % sink_port, rate)


def start_cluster(port, senders, extra=None):
    conf = {"broadcast_engine.sender_workers": str(senders), "broadcast_engine.retry_base": "'200ms'",
            "broadcast_engine.allow_insecure_transport": "on", "broadcast_engine.scheduler_tick": "'500ms'", "broadcast_engine.drain_poll": "'300ms'"}
    conf.update(extra or {})
    c = Cluster(port, conf=conf)
    c.start()
    return c


def senders_running(db):
    return db.one("SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE '%%sender%%'")


def run(r):
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    try:
        run_restore(r, sinkf)
        http("POST", "http://127.0.0.1:%s/_mock/reset" % sinkf["http"], {})
        run_restart_upgrade(r, sinkf)
        http("POST", "http://127.0.0.1:%s/_mock/reset" % sinkf["http"], {})
        run_from_12(r, sinkf)
    finally:
        sink.kill()


def run_restore(r, sinkf):
    a = start_cluster(55300, 1)
    b = None
    try:
        DB(a.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(a.connect())
        db.q("CREATE ROLE tenant_a LOGIN")
        db.q("CREATE EXTENSION broadcast_engine")
        populate(db, sinkf["port"])
        db.q("SELECT broadcast.grant_workspace('acme', 'tenant_a')")
        # history: a sent broadcast
        db.q("SELECT broadcast.create_broadcast('acme', 'b0', 'B0', '{vip}', 'smtp', 'b0')")
        db.q("SELECT broadcast.schedule_broadcast('acme', 'b0')")
        wait_for("b0 sent", lambda: bstatus(db, "b0")[0] == "completed", 60)
        # the senders stop, so the dump catches b1 mid-send with every row still queued
        a.set_conf(broadcast_engine__sender_workers="0")
        a.reload()
        wait_for("senders gone", lambda: senders_running(db) == 0, 30)
        db.q("SELECT broadcast.create_broadcast('acme', 'b1', 'B1', '{l}', 'smtp', 'b1')")
        db.q("SELECT broadcast.schedule_broadcast('acme', 'b1')")
        wait_for("b1 expanded", lambda: db.one(
            "SELECT enqueued_count FROM broadcast.broadcasts WHERE broadcast_id = 'b1'") == 300, 60)
        db.q("SELECT broadcast.create_broadcast('acme', 'b2', 'B2', '{l}', 'smtp', 'b2')")
        db.q("SELECT broadcast.schedule_broadcast('acme', 'b2', now() + interval '1 day')")
        url = db.one("SELECT broadcast.unsubscribe_url('acme', 'solo@example.com', 'vip')")
        token = url.rsplit("/", 1)[1]
        # history in two months, in their partitions (made by the maintenance), and a random id in DEFAULT
        add_history(db, 40)
        db.q("INSERT INTO broadcast.message_history (workspace_id, message_id, email, status)"
             " VALUES ('acme', gen_random_uuid(), 'v4@example.com', 'sent')")
        db.q("SELECT broadcast.maintain_history()")
        hist = history_state(db)
        r.check("source: history in two monthly partitions and DEFAULT (%s)" % (hist[1],),
                len([p for p, n in hist[1].items() if "_p" in p and n >= 20]) == 2
                and hist[1].get("broadcast.message_history_default") == 1
                and hist[0][0] == hist[0][1] == 40 + 1 + 21, hist)
        before = table_counts(db)
        dump = os.path.join(a.dir, "be.dump")
        roles = os.path.join(a.dir, "roles.sql")
        tool("pg_dump", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "-Fc", "-f", dump, "be_test")
        tool("pg_dumpall", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "--roles-only", "-f", roles)
        r.check("source: nothing of b1 sent before the dump", bstatus(db, "b1")[1] == 0
                and not per_recipient(sinkf, "B1"), bstatus(db, "b1"))
        r.check("source: data in every table that matters (%s)" % before,
                all(before[t] > 0 for t in ("contacts", "list_members", "templates", "integrations", "broadcasts",
                                             "tasks", "email_queue", "message_history", "suppressions",
                                             "workspace_grants", "workspace_secrets")), before)

        # ---- into a fresh database of the same cluster (no workers there) ----
        DB(a.connect("postgres")).q("CREATE DATABASE be_copy")
        tool("pg_restore", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "-d", "be_copy", dump)
        cp = DB(a.connect("be_copy"))
        got = table_counts(cp)
        r.check("same cluster: every table has the source's row count",
                got == before, {t: (before.get(t), got.get(t)) for t in set(before) | set(got)
                                if before.get(t) != got.get(t)})
        r.check("same cluster: every history row once, in the same partitions",
                history_state(cp) == hist, (history_state(cp), hist))
        r.check("same cluster: a fresh instance nonce",
                cp.one("SELECT nonce FROM broadcast.instance") != db.one("SELECT nonce FROM broadcast.instance"))
        cp.q("CALL broadcast.run_tasks(1)")
        s = bstatus(cp, "b1")
        r.check("same cluster: b1 held after a scheduler cycle (%s)" % (s,),
                s[0] == "paused" and s[3] == "processing" and REASON in (s[2] or ""), s)
        t = DB(a.connect("be_copy", user="tenant_a"))
        r.check("same cluster: the tenant role still uses its workspace",
                t.one("SELECT count(*) FROM broadcast.contacts") == 301
                and t.q("SELECT broadcast.my_workspaces()") == [("acme",)])
        t.close()

        # ---- --data-only into a database that has the extension, and -t of two tables ----
        data = os.path.join(a.dir, "data.dump")
        # (rows through the root: the target has its own partitions, docs/operations.md)
        tool("pg_dump", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "-Fc", "--data-only",
             "--load-via-partition-root", "-f", data, "be_test")
        DB(a.connect("postgres")).q("CREATE DATABASE be_data")
        DB(a.connect("be_data")).q("CREATE EXTENSION broadcast_engine")
        tool("pg_restore", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "--data-only",
             "-d", "be_data", data)
        ddb = DB(a.connect("be_data"))
        got = table_counts(ddb)
        r.check("--data-only: every table has the source's row count", got == before,
                {t: (before.get(t), got.get(t)) for t in set(before) | set(got) if before.get(t) != got.get(t)})
        r.check("--data-only: every history row once", history_state(ddb)[0] == hist[0], history_state(ddb)[0])
        # the target had only DEFAULT: the maintenance moves the rows into their months
        ddb.q("SELECT broadcast.maintain_history()")
        r.check("--data-only: the maintenance sorts them into months",
                history_state(ddb) == hist, (history_state(ddb), hist))
        ddb.close()
        part = os.path.join(a.dir, "part.dump")
        tool("pg_dump", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "-Fc", "--data-only",
             "-t", "broadcast.workspaces", "-t", "broadcast.contacts", "-f", part, "be_test")
        DB(a.connect("postgres")).q("CREATE DATABASE be_part")
        DB(a.connect("be_part")).q("CREATE EXTENSION broadcast_engine")
        tool("pg_restore", "-h", "127.0.0.1", "-p", str(a.port), "-U", "postgres", "--data-only",
             "-d", "be_part", part)
        pdb = DB(a.connect("be_part"))
        r.check("-t: the two tables restored",
                pdb.row("SELECT (SELECT count(*) FROM broadcast.workspaces), (SELECT count(*) FROM broadcast.contacts)")
                == (1, before["contacts"]))
        pdb.close()

        # ---- into a second cluster, roles first, workers running during the restore ----
        b = start_cluster(55301, 1)
        bp = DB(b.connect("postgres"))
        as_postgres([os.path.join(PGBIN, "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(b.port), "-U", "postgres",
                     "-d", "postgres", "-f", roles])
        bp.q("CREATE DATABASE be_test")
        tool("pg_restore", "-h", "127.0.0.1", "-p", str(b.port), "-U", "postgres", "-d", "be_test", dump)
        bdb = DB(b.connect())
        got = table_counts(bdb)
        r.check("second cluster: every table has the source's row count",
                got == before, {t: (before.get(t), got.get(t)) for t in set(before) | set(got)
                                if before.get(t) != got.get(t)})
        r.check("second cluster: every history row once, in the same partitions",
                history_state(bdb) == hist, (history_state(bdb), hist))
        wait_for("b1 held by the scheduler", lambda: bstatus(bdb, "b1")[0] == "paused"
                 and REASON in (bstatus(bdb, "b1")[2] or ""), 30)
        s2 = bstatus(bdb, "b2")
        r.check("second cluster: b2 (scheduled for later) held too (%s)" % (s2,),
                s2[0] == "paused" and s2[3] == "scheduled" and REASON in (s2[2] or ""), s2)
        r.check("second cluster: b0 (completed) adopted silently",
                bdb.row("SELECT status, last_error, instance_nonce = broadcast._instance_nonce()"
                        " FROM broadcast.broadcasts WHERE broadcast_id = 'b0'") == ("completed", None, True))
        r.check("second cluster: the held tasks are paused",
                bdb.q("SELECT DISTINCT status FROM broadcast.tasks WHERE status <> 'completed'") == [("paused",)])
        wait_for("a sender running", lambda: senders_running(bdb) >= 1, 30)
        # nothing of b1 leaves while held: watch the sink for a while
        deadline = time.time() + 4
        leaked = 0
        while time.time() < deadline and not leaked:
            leaked = sum(per_recipient(sinkf, "B1").values())
            time.sleep(0.2)
        r.check("second cluster: nothing sent while held (%d messages)" % leaked,
                leaked == 0 and bdb.one("SELECT sum(attempts) FROM broadcast.email_queue") == 0)
        res = bdb.one("SELECT unsubscribed FROM broadcast.unsubscribe(%s)", token)
        r.check("second cluster: the unsubscribe token minted before the dump verifies", res is True, res)
        t = DB(b.connect(user="tenant_a"))
        r.check("second cluster: the tenant role still uses its workspace",
                t.one("SELECT count(*) FROM broadcast.contacts") == 301
                and t.q("SELECT broadcast.my_workspaces()") == [("acme",)]
                and t.one("SELECT broadcast.unsubscribe_url('acme', 'r8@example.com')").startswith("https://"))
        denied = None
        try:
            t.q("SELECT broadcast.resume_after_restore()")
        except Exception as e:  # noqa: BLE001
            denied = str(e)
        r.check("second cluster: a tenant cannot lift the hold", denied and "permission denied" in denied, denied)
        t.close()
        n = bdb.one("SELECT broadcast.resume_after_restore()")
        r.check("second cluster: resume_after_restore resumed the two held broadcasts", n == 2, n)
        wait_for("b1 completed after the resume", lambda: bstatus(bdb, "b1")[0] == "completed", 90)
        cnt = per_recipient(sinkf, "B1")
        expect = {"r%d@example.com" % i for i in range(1, 301)}
        r.check("b1: each recipient exactly once across the whole test (%d addresses, max %d)"
                % (len(cnt), max(cnt.values() or [0])),
                set(cnt) == expect and all(v == 1 for v in cnt.values()),
                (len(cnt), sorted(k for k, v in cnt.items() if v != 1)[:5], sorted(expect - set(cnt))[:5]))
        r.check("b2 is scheduled for later again and sent nothing",
                bstatus(bdb, "b2")[0] == "scheduled" and not per_recipient(sinkf, "B2"), bstatus(bdb, "b2"))
    except Exception:
        print("# server log A:\n" + "\n".join("#   " + l for l in a.tail_log(30).splitlines()))
        if b:
            print("# server log B:\n" + "\n".join("#   " + l for l in b.tail_log(30).splitlines()))
        raise
    finally:
        a.destroy()
        if b:
            b.destroy()


def run_restart_upgrade(r, sinkf):
    """A restart and a pg_upgrade are the same database: the broadcast goes on."""
    c = start_cluster(55302, 1)
    d = None
    try:
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        populate(db, sinkf["port"], n=120, rate=20)
        nonce = db.one("SELECT nonce::text FROM broadcast.instance")
        db.q("SELECT broadcast.create_broadcast('acme', 'b1', 'B1', '{l}', 'smtp', 'b1')")
        db.q("SELECT broadcast.schedule_broadcast('acme', 'b1')")
        wait_for("b1 sending", lambda: bstatus(db, "b1")[1] >= 10, 60)
        db.close()
        c.stop("fast")
        c.start()
        db = DB(c.connect())
        sent = bstatus(db, "b1")[1]
        wait_for("b1 sends on after the restart", lambda: bstatus(db, "b1")[1] > sent, 30)
        s = bstatus(db, "b1")
        r.check("restart: not held, same nonce (%s)" % (s,),
                s[0] == "processing" and s[2] is None
                and db.one("SELECT nonce::text FROM broadcast.instance") == nonce, s)
        sent = s[1]
        db.close()
        c.stop("fast")
        d = Cluster(55303, conf={"broadcast_engine.sender_workers": "1",
                                 "broadcast_engine.allow_insecure_transport": "on",
                                 "broadcast_engine.scheduler_tick": "'500ms'",
                                 "broadcast_engine.drain_poll": "'300ms'"})
        tool("pg_upgrade", "-b", PGBIN, "-B", PGBIN, "-d", c.data, "-D", d.data, "-p", str(c.port),
             "-P", str(d.port), "--link", cwd=d.dir)
        d.start()
        db = DB(d.connect())
        r.check("pg_upgrade: the nonce survives", db.one("SELECT nonce::text FROM broadcast.instance") == nonce)
        wait_for("b1 completes after pg_upgrade", lambda: bstatus(db, "b1")[0] == "completed", 90)
        s = bstatus(db, "b1")
        cnt = per_recipient(sinkf, "B1")
        r.check("pg_upgrade: never held, completed, everyone reached (%s, %d addresses, sent before %d)"
                % (s, len(cnt), sent),
                s[2] is None and s[1] == 120 and len(cnt) == 120
                and db.one("SELECT count(*) FROM broadcast.broadcasts WHERE last_error IS NOT NULL") == 0, s)
        # duplicates only from what was in flight at the two shutdowns
        r.check("restart and pg_upgrade: duplicates bounded by the in-flight window (%d)"
                % sum(v - 1 for v in cnt.values()), sum(v - 1 for v in cnt.values()) <= 40)
    except Exception:
        print("# server log C:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        if d:
            print("# server log D:\n" + "\n".join("#   " + l for l in d.tail_log(30).splitlines()))
        raise
    finally:
        c.destroy()
        if d:
            d.destroy()


def run_from_12(r, sinkf):
    """1.2 with data, a broadcast in flight; ALTER EXTENSION UPDATE holds nothing."""
    c = start_cluster(55304, 1)
    try:
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE ROLE tenant_b LOGIN")
        db.q("CREATE EXTENSION broadcast_engine VERSION '1.2'")
        populate(db, sinkf["port"], n=60)
        db.q("SELECT broadcast.grant_workspace('acme', 'tenant_b')")
        db.q("INSERT INTO broadcast.pending_events (workspace_id, message_id, event, occurred_at)"
             " VALUES ('acme', gen_random_uuid(), 'delivered', now())")
        db.q("SELECT broadcast.create_broadcast('acme', 'b1', 'B1', '{l}', 'smtp', 'b1')")
        db.q("SELECT broadcast.schedule_broadcast('acme', 'b1')")
        # history of two months, and a random (1.1-style) id
        add_history(db, 30, salt="u")
        db.q("INSERT INTO broadcast.message_history (workspace_id, message_id, email, status)"
             " VALUES ('acme', gen_random_uuid(), 'v4@example.com', 'sent')")
        hist_before = history_state(db)[0]
        before = table_counts(db)
        # the workers wait for the version of their library: nothing moves on 1.2
        r.check("1.2: the broadcast waits for the update", bstatus(db, "b1")[0] == "scheduled")
        db.q("ALTER EXTENSION broadcast_engine UPDATE")
        after = table_counts(db)
        # tables new in 1.3: the nonce, one audience lock row per workspace;
        # every other one (dropped events, segments, ...) starts empty
        new = {t: after.pop(t) for t in set(after) - set(before)}
        r.check("1.2 -> 1.3: the new tables hold what they should (%s)" % new,
                new.get("instance") == 1 and new.get("audience_locks") == 1
                and "pending_events_dropped" in new
                and all(v == 0 for t, v in new.items() if t not in ("instance", "audience_locks")), new)
        r.check("1.2 -> 1.3: every row kept", after == before,
                {t: (before.get(t), after.get(t)) for t in set(before) | set(after) if before.get(t) != after.get(t)})
        ids, parts = history_state(db)
        r.check("1.2 -> 1.3: every history row kept once, in two monthly partitions and DEFAULT (%s)" % parts,
                ids == hist_before and sorted(parts.values()) == [1, 15, 15]
                and parts.get("broadcast.message_history_default") == 1, (ids, hist_before, parts))
        r.check("1.2 -> 1.3: the partitions are not extension members, DEFAULT is",
                db.q("SELECT c.relname::text FROM pg_depend d JOIN pg_class c ON c.oid = d.objid"
                     " WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'"
                     " AND c.relname LIKE 'message_history%%' ORDER BY 1")
                == [("message_history",), ("message_history_default",)])
        r.check("1.2 -> 1.3: every broadcast adopted, the grant kept by name",
                db.one("SELECT count(*) FROM broadcast.broadcasts WHERE instance_nonce <> broadcast._instance_nonce()") == 0
                and db.q("SELECT role_name::text FROM broadcast.workspace_grants") == [("tenant_b",)])
        wait_for("b1 completes after the update", lambda: bstatus(db, "b1")[0] == "completed", 90)
        s = bstatus(db, "b1")
        cnt = per_recipient(sinkf, "B1")
        r.check("1.2 -> 1.3: never held, each recipient once (%s)" % (s,),
                s[2] is None and len(cnt) == 60 and all(v == 1 for v in cnt.values()), s)
        t = DB(c.connect(user="tenant_b"))
        r.check("1.2 -> 1.3: the tenant still uses its workspace", t.one("SELECT count(*) FROM broadcast.contacts") == 61)
        t.close()
        # a dump after the upgrade restores with rows
        now_counts = table_counts(db)
        dump = os.path.join(c.dir, "up.dump")
        tool("pg_dump", "-h", "127.0.0.1", "-p", str(c.port), "-U", "postgres", "-Fc", "-f", dump, "be_test")
        DB(c.connect("postgres")).q("CREATE DATABASE be_copy")
        tool("pg_restore", "-h", "127.0.0.1", "-p", str(c.port), "-U", "postgres", "-d", "be_copy", dump)
        got = table_counts(DB(c.connect("be_copy")))
        r.check("1.3 after the upgrade: dump and restore keep every row", got == now_counts,
                {t: (now_counts.get(t), got.get(t)) for t in set(now_counts) | set(got)
                 if now_counts.get(t) != got.get(t)})
        r.check("1.3 after the upgrade: every history row once after the restore",
                history_state(DB(c.connect("be_copy"))) == history_state(db))
    except Exception:
        print("# server log E:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        raise
    finally:
        c.destroy()


if __name__ == "__main__":
    import belib
    runner = belib.Runner()
    run(runner)
    raise SystemExit(runner.done("backup"))
