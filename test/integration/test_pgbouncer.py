"""The SQL API through PgBouncer in transaction-pooling mode.

A cluster (port 55900) with the workers, and Debian's pgbouncer started as
the postgres OS user on a free loopback port: pool_mode = transaction,
default_pool_size = 2, max_client_conn small, auth_type trust with a
generated userlist.  The alias database be_one has pool_size = 1, so every
client of one user there shares one server connection, which lets the tests
show what goes wrong deterministically.

Covers, all through PgBouncer: an administrator creating workspaces and
granting them; a tenant login doing the README's API walk (contacts, lists,
subscribe, template and preview, integration, a broadcast sent by the
workers to an SMTP sink, pause/resume/cancel, stats, the progress views,
unsubscribe_url and unsubscribe, record_events, record_webhook with a
Svix-signed body, forget_contact, drop_list); a PostgREST-style front (one
authenticator login, SET LOCAL ROLE per transaction) serving two tenants on
the same server connection with 42501 across them; and what must not go
through a transaction pooler: CALL run_tasks()/send_queue() (they work in
autocommit but hold a server connection for the whole call, and are refused
inside a transaction block), session SET ROLE (leaks to the next client),
LISTEN, session advisory locks, protocol-level prepared statements on
PgBouncer < 1.21.  docs/operations.md ("PgBouncer") states the rules.
"""
import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from belib import DB, IS_ROOT, ROOT, Cluster, psycopg2, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
USERS = ["postgres", "be_admin", "tenant_a", "tenant_b", "authenticator"]
WHSEC = base64.b64encode(b"pgbouncer-test-signing-key-32by!").decode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Bouncer:
    """pgbouncer in front of a Cluster, run in the foreground as postgres."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.port = free_port()
        d = cluster.dir
        self.ini = os.path.join(d, "pgbouncer.ini")
        self.log = os.path.join(d, "pgbouncer.log")
        with open(os.path.join(d, "userlist.txt"), "w") as f:
            for u in USERS:
                f.write('"%s" ""\n' % u)
        with open(self.ini, "w") as f:
            f.write("""[databases]
be_test = host=127.0.0.1 port=%(pg)d dbname=be_test
be_one = host=127.0.0.1 port=%(pg)d dbname=be_test pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %(port)d
unix_socket_dir =
auth_type = trust
auth_file = %(dir)s/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 20
default_pool_size = 2
logfile = %(log)s
pidfile = %(dir)s/pgbouncer.pid
""" % {"pg": cluster.port, "port": self.port, "dir": d, "log": self.log})
        cmd = [PGBOUNCER, self.ini]
        if IS_ROOT:
            subprocess.run(["chown", "-R", "postgres", d])
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("pgbouncer accepting", self._ready, 30)

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("pgbouncer exited: " + self.tail())
        try:
            self.connect("be_test", "postgres").close()
            return True
        except psycopg2.OperationalError:
            return False

    def connect(self, dbname="be_test", user="postgres", autocommit=True):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=user)
        conn.autocommit = autocommit
        return conn

    def tail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def sqlstate(db, sql, *args):
    """Runs sql; returns None or the SQLSTATE it failed with (the transaction is rolled back)."""
    try:
        db.q(sql, *args)
        return None
    except psycopg2.Error as e:
        if not db.conn.autocommit:
            db.conn.rollback()
        return e.pgcode


def start_sink():
    p = subprocess.Popen([sys.executable, os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("smtp sink did not start: %r" % line)
    return p, dict(kv.split("=") for kv in line.split()[1:])


def sink_messages(fields):
    with urllib.request.urlopen("http://127.0.0.1:%s/_mock/messages" % fields["http"], timeout=10) as r:
        msgs = json.loads(r.read() or b"null")
    return msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs


def svix_headers(body, msg_id):
    ts = str(int(time.time()))
    mac = hmac.new(base64.b64decode(WHSEC), ("%s.%s.%s" % (msg_id, ts, body)).encode(), hashlib.sha256)
    return {"svix-id": msg_id, "svix-timestamp": ts,
            "svix-signature": "v1," + base64.b64encode(mac.digest()).decode()}


def run(r):
    sink, sinkf = start_sink()
    c = Cluster(55900, conf={"broadcast_engine.sender_workers": "1",
                             "broadcast_engine.allow_insecure_transport": "on"})  # the sink has no TLS
    b = None
    try:
        c.start()
        direct = DB(c.connect("postgres"))
        direct.q("CREATE DATABASE be_test")
        direct.close()
        direct = DB(c.connect())
        direct.q("CREATE EXTENSION broadcast_engine")
        # the roles exist before the pooler; everything else goes through it
        direct.q("CREATE ROLE be_admin LOGIN IN ROLE broadcast_admin")
        direct.q("CREATE ROLE tenant_a LOGIN")
        direct.q("CREATE ROLE tenant_b LOGIN")
        direct.q("CREATE ROLE authenticator LOGIN NOINHERIT")
        direct.q("GRANT tenant_a, tenant_b TO authenticator")
        b = Bouncer(c)
        r.run("pgbouncer: an administrator creates and grants workspaces", admin_setup, b)
        r.run("pgbouncer: a tenant walks the whole API; the workers send the broadcast",
              tenant_walk, r, b, c, sinkf)
        r.run("pgbouncer: a SET LOCAL ROLE front serves two tenants on one server connection",
              front_isolation, b)
        r.run("pgbouncer: CALL run_tasks/send_queue work only in autocommit, holding a server connection",
              procedures, b, c)
        r.run("pgbouncer: a session SET ROLE leaks to the next client of the connection", set_role_leaks, b)
        r.run("pgbouncer: LISTEN and session advisory locks belong to the shared connection",
              listen_and_locks, b, c)
        r.run("pgbouncer: protocol-level prepared statement names collide (PgBouncer < 1.21)",
              prepared_statements, b)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        if b:
            print("# pgbouncer log:\n" + "\n".join("#   " + l for l in b.tail(20).splitlines()))
        raise
    finally:
        if b:
            b.stop()
        c.destroy()
        sink.kill()


def admin_setup(b):
    admin = DB(b.connect(user="be_admin"))
    admin.q("""SELECT broadcast.create_workspace('acme', 'Acme News', 'Europe/Paris',
               '{"sending_domain": "news.acme.test", "unsubscribe_base_url": "https://acme.test/unsubscribe",
                 "default_from_email": "news@acme.test"}')""")
    admin.q("SELECT broadcast.create_workspace('globex', 'Globex')")
    admin.q("SELECT broadcast.grant_workspace('acme', 'tenant_a')")
    admin.q("SELECT broadcast.grant_workspace('globex', 'tenant_b')")
    grants = admin.q("SELECT workspace_id, role_name FROM broadcast.workspace_grants ORDER BY 1")
    assert [tuple(g) for g in grants] == [("acme", "tenant_a"), ("globex", "tenant_b")], grants
    # a tenant is not an administrator, through the pooler as directly
    t = DB(b.connect(user="tenant_a"))
    st = sqlstate(t, "SELECT broadcast.create_workspace('evil', 'Evil')")
    assert st == "42501", st
    admin.close()
    t.close()


def tenant_walk(r, b, c, sinkf):
    t = DB(b.connect(user="tenant_a"))
    n = t.one("""SELECT broadcast.upsert_contacts('acme', '[
        {"email": "ada@example.com", "first_name": "Ada", "timezone": "Europe/London", "properties": {"plan": "pro"}},
        {"email": "grace@example.com", "first_name": "Grace"},
        {"email": "linus@example.com", "first_name": "Linus"}]')""")
    assert n is not None
    t.q("SELECT broadcast.create_list('acme', 'weekly', 'Weekly digest')")
    t.q("SELECT broadcast.subscribe('acme', 'weekly', ARRAY['ada@example.com', 'grace@example.com', 'linus@example.com'])")
    t.q("""SELECT broadcast.create_template('acme', 'digest',
        subject => 'Your week, {{ contact.first_name | default: "friend" }}',
        html => '<p>Hello {{ contact.first_name | escape }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        from_email => 'news@acme.test', from_name => 'Acme')""")
    subject, html = t.row("SELECT subject, html FROM broadcast.render_template('acme', 'digest', NULL, 'ada@example.com')")
    assert subject == "Your week, Ada" and "https://acme.test/unsubscribe/" in html, (subject, html)
    t.q("SELECT broadcast.create_integration('acme', 'mail', 'smtp', %s, rate_per_second => 50)",
        json.dumps({"host": "127.0.0.1", "port": int(sinkf["port"]), "tls": "none"}))

    # sent by the workers, watched through the pooler
    t.q("SELECT broadcast.create_broadcast('acme', 'week-48', 'Week 48', ARRAY['weekly'], 'mail', template_id => 'digest')")
    t.q("SELECT broadcast.schedule_broadcast('acme', 'week-48')")
    try:
        wait_for("week-48 completed", lambda: t.one(
            "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'acme' AND broadcast_id = 'week-48'")
            == "completed", 60)
    except AssertionError:
        print("# %r" % (t.q("SELECT status, last_error, total_recipients, sent_count, failed_count"
                            " FROM broadcast.broadcasts"),))
        print("# %r" % (t.q("SELECT * FROM broadcast.queue_health"),))
        d = DB(c.connect())
        for q in ["SELECT now()", "SELECT email, status, attempts, next_attempt_at, last_error FROM broadcast.email_queue",
                  "SELECT * FROM broadcast.workers", "SELECT * FROM broadcast.rate_limits()", "SELECT * FROM broadcast.integrations",
                  "SELECT * FROM broadcast.active_pairs"]:
            try:
                print("# %s: %r" % (q, d.q(q)))
            except Exception as e:
                print("# %s: %s" % (q, e))
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
        raise
    stats = t.row("SELECT sent, failed FROM broadcast.broadcast_stats('acme', 'week-48') WHERE template_id IS NULL")
    got = sorted(m["recipient"] for m in sink_messages(sinkf))
    r.check("pgbouncer: the broadcast reached all 3 members, stats say so (%s)" % (stats,),
            stats == (3, 0) and got == ["ada@example.com", "grace@example.com", "linus@example.com"],
            (stats, got))

    # pause, resume, cancel a broadcast scheduled for tomorrow; the progress views
    t.q("SELECT broadcast.create_broadcast('acme', 'later', 'Later', ARRAY['weekly'], 'mail', template_id => 'digest')")
    t.q("SELECT broadcast.schedule_broadcast('acme', 'later', now() + interval '1 day')")
    assert t.one("SELECT status FROM broadcast.progress WHERE broadcast_id = 'later'") == "scheduled"
    assert t.one("SELECT broadcast.pause_broadcast('acme', 'later')") == "paused"
    assert t.one("SELECT broadcast.resume_broadcast('acme', 'later')") == "scheduled"
    assert t.one("SELECT broadcast.cancel_broadcast('acme', 'later')") == 0
    assert t.one("SELECT status FROM broadcast.broadcasts WHERE broadcast_id = 'later'") == "cancelled"
    t.q("SELECT * FROM broadcast.queue_health")
    assert t.one("SELECT count(*) FROM broadcast.dead_letters") == 0

    # delivery events: the generic form for a message that was sent ...
    mid = t.one("SELECT message_id::text FROM broadcast.message_history WHERE workspace_id = 'acme'"
                " AND email = 'grace@example.com'")
    res = t.row("SELECT received, applied FROM broadcast.record_events('acme', 'mail', %s)",
                json.dumps({"events": [{"message_id": mid, "event": "opened"}]}))
    assert res == (1, 1), res
    assert t.one("SELECT opened_at IS NOT NULL FROM broadcast.message_history WHERE message_id = %s", mid)
    # ... and a Svix-signed raw body (Resend) checked through the pooler
    t.q("SELECT broadcast.create_integration('acme', 'rs', 'resend', '{}', secret => 're_test')")
    t.q("SELECT broadcast.set_webhook_secret('acme', 'rs', %s)", "whsec_" + WHSEC)
    body = json.dumps({"type": "email.opened", "created_at": "2026-12-01T10:00:00.000Z",
                       "data": {"email_id": "00000000-0000-4000-8000-0000000000aa", "to": ["ada@example.com"]}})
    h = svix_headers(body, "msg_pgb1")
    received = t.one("SELECT received FROM broadcast.record_webhook('acme', 'rs', %s, %s)", body, json.dumps(h))
    assert received == 1, received
    h["svix-signature"] = "v1," + base64.b64encode(b"\0" * 32).decode()
    st = sqlstate(t, "SELECT * FROM broadcast.record_webhook('acme', 'rs', %s, %s)", body, json.dumps(h))
    assert st == "28000", st

    # one-click unsubscribe with the URL's token
    url = t.one("SELECT broadcast.unsubscribe_url('acme', 'ada@example.com', 'weekly')")
    assert url.startswith("https://acme.test/unsubscribe/"), url
    token = url.rsplit("/", 1)[1]
    assert t.row("SELECT email, list_id, unsubscribed FROM broadcast.unsubscribe(%s)", token) == \
        ("ada@example.com", "weekly", True)
    assert t.one("SELECT unsubscribed FROM broadcast.unsubscribe(%s)", token) is False

    # erasure and dropping the list
    assert t.one("SELECT broadcast.forget_contact('acme', 'grace@example.com')") == 1
    assert t.one("SELECT count(*) FROM broadcast.contacts WHERE email = 'grace@example.com'") == 0
    t.q("SELECT broadcast.drop_list('acme', 'weekly')")
    assert t.one("SELECT count(*) FROM broadcast.lists WHERE workspace_id = 'acme'") == 0
    # the other tenant's workspace stays out of reach
    assert sqlstate(t, "SELECT broadcast.create_list('globex', 'x', 'x')") == "42501"
    t.close()


def front_isolation(b):
    """Two clients of one authenticator, one server connection (be_one), two tenants."""
    x = DB(b.connect("be_one", "authenticator", autocommit=False))
    y = DB(b.connect("be_one", "authenticator", autocommit=False))
    pids = set()
    for _ in range(3):  # interleaved requests, each its own transaction
        x.q("SET LOCAL ROLE tenant_a")
        pids.add(x.one("SELECT pg_backend_pid()"))
        x.q("SELECT broadcast.upsert_contacts('acme', '[{\"email\": \"front@example.com\"}]')")
        x.conn.commit()
        y.q("SET LOCAL ROLE tenant_b")
        pids.add(y.one("SELECT pg_backend_pid()"))
        assert sqlstate(y, "SELECT broadcast.upsert_contacts('acme', '[{\"email\": \"intruder@example.com\"}]')") \
            == "42501"
        y.q("SET LOCAL ROLE tenant_b")  # PostgREST's own form of the same switch
        y.q("SELECT set_config('role', 'tenant_b', true)")
        y.q("SELECT broadcast.upsert_contacts('globex', '[{\"email\": \"front@example.com\"}]')")
        assert y.one("SELECT count(*) FROM broadcast.contacts WHERE workspace_id = 'acme'") == 0
        y.conn.commit()
        x.q("SET LOCAL ROLE tenant_a")
        assert sqlstate(x, "SELECT broadcast.broadcast_stats('globex', 'nope')") == "42501"
        # the switch ended with each transaction: the next one starts as the authenticator
        assert x.one("SELECT current_user") == "authenticator"
        x.conn.commit()
    assert len(pids) == 1, pids
    # the authenticator itself (NOINHERIT, no grants) reaches nothing
    assert sqlstate(x, "SELECT broadcast.create_list('acme', 'x', 'x')") == "42501"
    intruder = DB(b.connect(user="postgres")).one("SELECT count(*) FROM broadcast.contacts WHERE email = 'intruder@example.com'")
    assert intruder == 0, intruder
    x.close()
    y.close()


def procedures(b, c):
    admin = DB(b.connect("be_one", "be_admin"))
    # autocommit: PgBouncer keeps the server connection until the CALL returns
    admin.q("CALL broadcast.run_tasks(1)")
    admin.q("CALL broadcast.send_queue(1)")
    # in a transaction block (what an explicit BEGIN or a driver without autocommit sends): refused
    tx = DB(b.connect("be_one", "be_admin", autocommit=False))
    assert sqlstate(tx, "CALL broadcast.run_tasks(1)") == "2D000"
    assert sqlstate(tx, "CALL broadcast.send_queue(1)") == "2D000"
    tx.close()
    # while a CALL runs, its server connection serves no one else: hold a
    # procedure in a lock wait and watch the pool's other client queue up
    direct = DB(c.connect(autocommit=False))
    direct.q("LOCK TABLE broadcast.tasks IN ACCESS EXCLUSIVE MODE")
    holder = b.connect("be_one", "be_admin")
    holder_cur = holder.cursor()
    done = threading.Event()
    errors = []

    def call():
        try:
            holder_cur.execute("CALL broadcast.run_tasks(1)")
        except psycopg2.Error as e:
            errors.append(e)
        done.set()
    th = threading.Thread(target=call)
    th.start()
    try:
        wait_for("the CALL waiting on the lock", lambda: direct.one(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CALL broadcast.run_tasks%%'"
            " AND wait_event_type = 'Lock'") == 1, 30)
        waiter = b.connect("be_one", "be_admin")
        wcur = waiter.cursor()
        waiter_done = threading.Event()

        def probe():
            wcur.execute("SELECT 1")
            waiter_done.set()
        th2 = threading.Thread(target=probe)
        th2.start()
        adm = b.connect("pgbouncer", "postgres")
        acur = adm.cursor()

        def waiting():
            acur.execute("SHOW POOLS")
            cols = [d[0] for d in acur.description]
            for row in acur.fetchall():
                row = dict(zip(cols, row))
                if row["database"] == "be_one" and row["user"] == "be_admin":
                    return row["cl_waiting"] >= 1 and row["sv_active"] == 1
            return False
        wait_for("a client waiting for the pool's only connection", waiting, 30)
        assert not waiter_done.is_set()
    finally:
        direct.conn.rollback()
        direct.close()
    done.wait(30)
    th.join(30)
    th2.join(30)
    assert waiter_done.is_set() and not errors, errors
    waiter.close()
    holder.close()
    adm.close()
    admin.close()


def set_role_leaks(b):
    x = DB(b.connect("be_one", "authenticator"))
    y = DB(b.connect("be_one", "authenticator"))
    x.q("SET ROLE tenant_a")  # session-wide: stays on the server connection
    try:
        assert y.one("SELECT current_user") == "tenant_a"
        # the next client acts with tenant_a's workspaces without asking
        y.q("SELECT broadcast.create_list('acme', 'leaked', 'Leaked')")
        assert y.one("SELECT count(*) FROM broadcast.lists WHERE list_id = 'leaked'") == 1
    finally:
        y.q("RESET ROLE")
    assert x.one("SELECT current_user") == "authenticator"
    x.close()
    y.close()


def listen_and_locks(b, c):
    x = DB(b.connect("be_one", "tenant_a"))
    y = DB(b.connect("be_one", "tenant_a"))
    x.q("LISTEN be_chan")
    try:
        # the registration belongs to the server connection, which y now uses
        assert y.one("SELECT 'be_chan' = ANY (ARRAY(SELECT pg_listening_channels()))")
    finally:
        y.q("UNLISTEN *")
    x.q("SELECT pg_advisory_lock(4242)")
    try:
        direct = DB(c.connect())
        assert direct.one("SELECT pg_try_advisory_lock(4242)") is False
        direct.close()
        # another client gets the "same" lock at once: it excludes nobody in the pool
        assert y.one("SELECT pg_try_advisory_lock(4242)") is True
    finally:
        y.q("SELECT pg_advisory_unlock_all()")
    x.close()
    y.close()


def prepared_statements(b):
    out = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    version = (int(m.group(1)), int(m.group(2)))
    if version >= (1, 21):
        print("# PgBouncer %d.%d tracks protocol-level prepared statements (max_prepared_statements)" % version)
        return
    pq = ctypes.CDLL(ctypes.util.find_library("pq") or "libpq.so.5")
    pq.PQconnectdb.restype = ctypes.c_void_p
    pq.PQconnectdb.argtypes = [ctypes.c_char_p]
    pq.PQstatus.argtypes = [ctypes.c_void_p]
    pq.PQprepare.restype = ctypes.c_void_p
    pq.PQprepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    pq.PQresultErrorField.restype = ctypes.c_char_p
    pq.PQresultErrorField.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pq.PQclear.argtypes = [ctypes.c_void_p]
    pq.PQfinish.argtypes = [ctypes.c_void_p]
    PG_DIAG_SQLSTATE = ord("C")
    dsn = ("host=127.0.0.1 port=%d dbname=be_one user=tenant_a" % b.port).encode()
    x, y = pq.PQconnectdb(dsn), pq.PQconnectdb(dsn)
    try:
        assert pq.PQstatus(x) == 0 and pq.PQstatus(y) == 0
        res = pq.PQprepare(x, b"be_stats", b"SELECT * FROM broadcast.broadcast_stats($1, $2)", 0, None)
        assert pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) is None
        pq.PQclear(res)
        # a second client preparing the same name lands on the same server connection
        res = pq.PQprepare(y, b"be_stats", b"SELECT 1", 0, None)
        st = pq.PQresultErrorField(res, PG_DIAG_SQLSTATE)
        pq.PQclear(res)
        assert st == b"42P05", st  # duplicate_prepared_statement
    finally:
        pq.PQfinish(x)
        pq.PQfinish(y)
        # the statement stays on the server connection: drop it for whoever comes next
        DB(b.connect("be_one", "tenant_a")).q("DEALLOCATE ALL")
