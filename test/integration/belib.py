"""Helpers for broadcast_engine's integration suites.

A Cluster is a throw-away PostgreSQL 15 instance, preloaded with
broadcast_engine and pg_cron, run as the postgres OS user on a loopback
port in a temporary folder that is removed afterwards.  Tests wait for
workers by polling for a state with a deadline (wait_for), never by
sleeping a fixed time.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import psycopg2
    import psycopg2.extras
except ImportError:  # pyenv's python3 does not see Debian's packages
    sys.path.append("/usr/lib/python3/dist-packages")
    import psycopg2
    import psycopg2.extras

PGBIN = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IS_ROOT = os.geteuid() == 0


def as_postgres(cmd, **kw):
    if IS_ROOT:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def free_port():
    """A loopback port no socket holds now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, port, dbname="be_test", conf=None):
        # BE_PORT_OFFSET lets two checkouts run the same suites side by side
        self.port = port + int(os.environ.get("BE_PORT_OFFSET", "0"))
        self.dbname = dbname
        self.dir = tempfile.mkdtemp(prefix="be-it-")
        if IS_ROOT:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        r = as_postgres([os.path.join(PGBIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                         "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stderr)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "'%s'" % self.dir,
            "shared_preload_libraries": "'broadcast_engine,pg_cron'",
            "broadcast_engine.database": "'%s'" % dbname,
            "cron.database_name": "'%s'" % dbname,
            "max_worker_processes": "32",
            "fsync": "on",
            "shared_buffers": "256MB",
            "max_wal_size": "4GB",
            "log_min_messages": "log",
            "timezone": "'UTC'",
            # the mocks and sinks listen on loopback (a suite may turn this off)
            "broadcast_engine.allow_private_endpoints": "on",
        }
        settings.update(conf or {})
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))
        if IS_ROOT:
            subprocess.run(["chown", "-R", "postgres", self.dir])

    def start(self):
        """Starts the server; on a port someone else holds, on a free one."""
        for _ in range(5):
            before = self.log_size()
            r = as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                             "start"])
            if r.returncode == 0:
                return
            # the suites' ports lie in the kernel's ephemeral range: any client
            # connection of an earlier test may hold one for a while
            if "Address already in use" not in self.log_since(before):
                break
            self.port = free_port()
            self.set_conf(port=str(self.port))
        raise RuntimeError("pg_ctl start failed: %s\n%s" % (r.stderr, self.tail_log()))

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log, errors="replace") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return ""

    def stop(self, mode="fast"):
        as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"])

    def reload(self):
        as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "reload"])

    def set_conf(self, **kw):
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            for k, v in kw.items():
                f.write("%s = %s\n" % (k.replace("__", "."), v))

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def tail_log(self, n=40):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def connect(self, dbname=None, autocommit=True, user="postgres"):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=dbname or self.dbname, user=user)
        conn.autocommit = autocommit
        return conn

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                c = self.connect("postgres")
                c.close()
                return
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)


class DB:
    """A connection with small query helpers."""

    def __init__(self, conn):
        self.conn = conn

    def q(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args or None)
            if cur.description is None:
                return None
            return cur.fetchall()

    def one(self, sql, *args):
        rows = self.q(sql, *args)
        return rows[0][0] if rows else None

    def row(self, sql, *args):
        rows = self.q(sql, *args)
        return rows[0] if rows else None

    def close(self):
        self.conn.close()


def wait_for(what, fn, timeout=60, interval=0.05):
    """Polls fn() until it returns a true value; fails after timeout seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
        except psycopg2.Error as e:  # the server may be restarting
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


class Runner:
    """Runs test functions, printing one ok / not ok line each."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, *args):
        t0 = time.time()
        try:
            fn(*args)
        except Exception:
            self.failed += 1
            print("not ok - %s" % name)
            for line in traceback.format_exc().splitlines():
                print("#   " + line)
        else:
            self.passed += 1
            print("ok - %s (%.1fs)" % (name, time.time() - t0))
        sys.stdout.flush()

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % name)
        else:
            self.failed += 1
            print("not ok - %s" % name)
            if detail:
                print("#   " + str(detail))
        sys.stdout.flush()

    def done(self, label):
        print("%s: %d passed, %d failed" % (label, self.passed, self.failed))
        return 1 if self.failed else 0


def setup_audience(db, ws, lists, per_list, overlap=0, tz="UTC"):
    """Creates a workspace with lists of generated members, in bulk."""
    db.q("SELECT broadcast.create_workspace(%s, %s, %s, '{\"default_from_email\": \"news@example.com\"}')", ws, ws, tz)
    start = 1
    for l in lists:
        db.q("SELECT broadcast.create_list(%s, %s, %s)", ws, l, l)
        db.q("""INSERT INTO broadcast.contacts (workspace_id, email)
                SELECT %s, 'u' || lpad(i::text, 8, '0') || '@example.com' FROM generate_series(%s, %s) i
                ON CONFLICT DO NOTHING""", ws, start, start + per_list - 1)
        db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
                SELECT %s, %s, 'u' || lpad(i::text, 8, '0') || '@example.com' FROM generate_series(%s, %s) i""",
             ws, l, start, start + per_list - 1)
        start += per_list - overlap
    db.q("SELECT broadcast.create_template(%s, 't', 'Hello {{ contact.first_name }}', '<p>Hi</p>')", ws)
    db.q("""SELECT broadcast.create_integration(%s, 'smtp', 'smtp', '{"host": "127.0.0.1"}')""", ws)
