#!/usr/bin/python3
"""Expansion benchmark: a broadcast's audience into broadcast.email_queue.

    bench/expand.py [small|full] [--segment] [--port P] [--runs R] [--keep]

full:  1,000,000 distinct recipients (two overlapping lists of 700,000:
       1,400,000 memberships), 3 runs of each measurement, medians.
small: 50,000 recipients, 1 run (a smoke test: no speed assertions).
--segment: the broadcast sends to a segment ({"field": "properties.plan",
       "op": "eq", "value": "pro"}, 70% of the contacts) instead of the two
       lists; the baselines insert the same rows with the same audience
       query (contacts matching the property, each with an active list).

One throw-away cluster (as the postgres OS user, on a loopback port, in a
temporary folder removed at the end) preloaded with broadcast_engine; its
workers are pointed at a database without the extension, so they stay idle
and the measured work is CALL broadcast.run_tasks() in this session.

Measured, interleaved run by run so that noise from other jobs on the
machine hits all three alike:
  orchestrator  create + schedule a broadcast, then CALL broadcast.run_tasks(600)
                until its task reaches phase 'drain' (checked: enqueued_count
                and the queue's distinct emails equal the audience)
  bare          one INSERT ... SELECT of the same rows (same audience query,
                gen_random_uuid(), now()) into a copy of email_queue with the
                same indexes and storage options, truncated between runs
  chunked-bare  the same insert, one transaction per 10,000-email range
                (ranges computed beforehand, untimed): the floor for any
                chunked, crash-safe expansion
Then, in a separate pass: the count query alone, and the orchestrator's time
per statement (pg_stat_statements, track = all).

run_tasks() commits with synchronous_commit off (a chunk lost in a crash is
only repeated); the baselines run in the same session with the same setting.
Each measurement waits until autovacuum triggered by the previous one is idle
(the queue's storage options make autovacuum eager); autovacuum started by a
measurement's own inserts is part of it, as it would be in production.

Exit status 0 when every run completed and checked out, 1 otherwise.
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import psycopg2
except ImportError:  # pyenv's python3 does not see Debian's packages
    sys.path.append("/usr/lib/python3/dist-packages")
    import psycopg2

PGBIN = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
IS_ROOT = os.geteuid() == 0
WS = "bench"
DB = "bench"
CHUNK = 10000
SEGMENT = False


def log(msg):
    print("# " + msg, flush=True)


def as_postgres(cmd):
    if IS_ROOT:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True)


def free_port(start):
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not os.path.exists("/tmp/.s.PGSQL.%d" % port):
            return port
    raise RuntimeError("no free loopback port from %d" % start)


class Cluster:
    def __init__(self, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="be-bench-")
        if IS_ROOT:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.started = False
        r = as_postgres([os.path.join(PGBIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                         "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stderr)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": "'%s'" % self.dir,
            "shared_preload_libraries": "'broadcast_engine,pg_stat_statements'",
            # the workers run in a database without the extension: they wait, idle
            "broadcast_engine.database": "'postgres'",
            "broadcast_engine.sender_workers": "0",
            # its integration names 127.0.0.1 (never sent to)
            "broadcast_engine.allow_private_endpoints": "on",
            "pg_stat_statements.track": "none",     # switched on for the split pass only
            "max_worker_processes": "16",
            "fsync": "on",
            "shared_buffers": "2GB",
            "wal_buffers": "64MB",
            "max_wal_size": "8GB",
            "checkpoint_timeout": "30min",
            "work_mem": "64MB",
            "maintenance_work_mem": "512MB",
            "autovacuum": "on",
            "log_checkpoints": "on",
            "timezone": "'UTC'",
        }
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))
        if IS_ROOT:
            subprocess.run(["chown", "-R", "postgres", self.dir])

    def start(self):
        r = as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                         "start"])
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s\n%s" % (r.stderr, self.tail_log()))
        self.started = True

    def destroy(self):
        if self.started:
            as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "-t", "60",
                         "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)

    def tail_log(self, n=40):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def connect(self, dbname):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=dbname, user="postgres")
        conn.autocommit = True
        return conn


class Session:
    def __init__(self, conn):
        self.conn = conn
        self.cur = conn.cursor()

    def q(self, sql, *args):
        self.cur.execute(sql, args or None)
        return self.cur.fetchall() if self.cur.description is not None else None

    def one(self, sql, *args):
        rows = self.q(sql, *args)
        return rows[0][0] if rows else None

    def timed(self, sql, *args):
        t0 = time.perf_counter()
        self.q(sql, *args)
        return time.perf_counter() - t0


def setup(s, n):
    """The audience, set-based: lists a = 1..0.7n, b = 0.3n+1..n."""
    a_hi = n * 7 // 10
    b_lo = n * 3 // 10 + 1
    email = "'u' || lpad(i::text, 8, '0') || '@example.com'"
    s.q("SELECT broadcast.create_workspace(%s, 'Bench', 'UTC', %s)", WS,
        '{"sending_domain": "news.bench.test", "unsubscribe_base_url": "https://bench.test/unsubscribe"}')
    s.q("SELECT broadcast.create_list(%s, 'a', 'List A')", WS)
    s.q("SELECT broadcast.create_list(%s, 'b', 'List B')", WS)
    s.q("INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)"
        " SELECT %s, " + email + ", 'User ' || i,"
        "        jsonb_build_object('plan', CASE WHEN i %% 10 < 7 THEN 'pro' ELSE 'free' END)"
        "   FROM generate_series(1, %s) i", WS, n)
    s.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email)"
        " SELECT %s, 'a', " + email + " FROM generate_series(1, %s) i", WS, a_hi)
    s.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email)"
        " SELECT %s, 'b', " + email + " FROM generate_series(%s, %s) i", WS, b_lo, n)
    # suppressions of addresses outside the audience: the anti-join is real
    # work in every plan, and the audience stays exactly n
    s.q("INSERT INTO broadcast.suppressions (workspace_id, email, reason)"
        " SELECT %s, 'u' || lpad(i::text, 8, '0') || '@example.com', 'manual'"
        "   FROM generate_series(%s, %s) i", WS, n + 1, n + max(n // 100, 10))
    s.q("SELECT broadcast.create_template(%s, 't', 'Hello {{ contact.first_name }}', '<p>Hi</p>',"
        " from_email => 'news@bench.test', from_name => 'Bench')", WS)
    s.q("SELECT broadcast.create_integration(%s, 'smtp', 'smtp', '{\"host\": \"127.0.0.1\"}')", WS)
    s.q("SELECT broadcast.create_segment(%s, 'pros', 'Pro plan',"
        " '{\"field\": \"properties.plan\", \"op\": \"eq\", \"value\": \"pro\"}')", WS)
    # the baseline's target: email_queue's columns, defaults, checks, indexes and storage options
    relopts = s.one("SELECT array_to_string(reloptions, ', ') FROM pg_class"
                    " WHERE oid = 'broadcast.email_queue'::regclass")
    s.q("CREATE TABLE public.queue_copy (LIKE broadcast.email_queue INCLUDING ALL)"
        + (" WITH (%s)" % relopts if relopts else ""))
    s.q("VACUUM ANALYZE")
    s.q("CHECKPOINT")
    return a_hi + (n - b_lo + 1)


AUDIENCE = """
  FROM (SELECT DISTINCT ON (m.email) m.email, m.list_id
          FROM broadcast.list_members m
         WHERE m.workspace_id = 'bench' AND m.list_id = ANY ('{{a,b}}') AND m.status = 'active' {range}
         ORDER BY m.email) a
 WHERE NOT EXISTS (SELECT 1 FROM broadcast.suppressions s
                    WHERE s.workspace_id = 'bench' AND s.email = a.email)"""

# the segment's audience, as a bare query would write it (the compiled
# condition, and the first active list of each contact)
AUDIENCE_SEG = """
  FROM (SELECT c.email, l.list_id FROM broadcast.contacts c
         CROSS JOIN LATERAL (SELECT m.list_id FROM broadcast.list_members m
                              WHERE m.workspace_id = 'bench' AND m.email = c.email AND m.status = 'active'
                              ORDER BY m.list_id LIMIT 1) l
         WHERE c.workspace_id = 'bench' AND c.properties @> '{{"plan": "pro"}}'
           AND (c.properties #> '{{plan}}') = '"pro"' {range}) a
 WHERE NOT EXISTS (SELECT 1 FROM broadcast.suppressions s
                    WHERE s.workspace_id = 'bench' AND s.email = a.email)"""

BARE_INSERT = """
INSERT INTO public.queue_copy
       (workspace_id, broadcast_id, email, integration_id, list_id, variation, message_id, next_attempt_at)
SELECT 'bench', 'bare', a.email, 'smtp', a.list_id, 0, gen_random_uuid(), now()""" + AUDIENCE

COUNT_QUERY = "SELECT count(*)" + AUDIENCE.format(range="")


def wait_autovacuum_idle(s, timeout=120):
    """Lets the autovacuum a previous measurement triggered finish before the next one starts."""
    deadline = time.time() + timeout
    while s.one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                "   AND query <> ''") and time.time() < deadline:
        time.sleep(0.2)


def checkpoints(s):
    return s.one("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")


class Failed(Exception):
    pass


def run_orchestrator(s, n, bid, before_call=None):
    if SEGMENT:
        s.q("SELECT broadcast.create_broadcast(%s, %s, %s, '{}', 'smtp', template_id => 't',"
            " segments => '{pros}')", WS, bid, "Bench " + bid)
    else:
        s.q("SELECT broadcast.create_broadcast(%s, %s, %s, ARRAY['a', 'b'], 'smtp', template_id => 't')",
            WS, bid, "Bench " + bid)
    s.q("SELECT broadcast.schedule_broadcast(%s, %s)", WS, bid)
    if before_call:
        before_call()
    t0 = time.perf_counter()
    s.q("CALL broadcast.run_tasks(600)")
    dt = time.perf_counter() - t0
    phase, status, err = s.q("SELECT phase, status, last_error FROM broadcast.tasks"
                             " WHERE workspace_id = %s AND broadcast_id = %s", WS, bid)[0]
    enq, total = s.q("SELECT enqueued_count, total_recipients FROM broadcast.broadcasts"
                     " WHERE workspace_id = %s AND broadcast_id = %s", WS, bid)[0]
    rows, distinct = s.q("SELECT count(*), count(DISTINCT email) FROM broadcast.email_queue"
                         " WHERE workspace_id = %s AND broadcast_id = %s", WS, bid)[0]
    if phase != "drain" or enq != n or total != n or rows != n or distinct != n:
        raise Failed("orchestrator %s: phase %s (task %s, error %r), enqueued_count %s, total %s,"
                     " queue rows %s, distinct emails %s; expected %d"
                     % (bid, phase, status, err, enq, total, rows, distinct, n))
    return dt


def reset_queue(s):
    s.q("DELETE FROM broadcast.email_queue")
    s.q("VACUUM broadcast.email_queue")


def run_bare(s, n):
    s.q("TRUNCATE public.queue_copy")
    dt = s.timed(BARE_INSERT.format(range=""))
    if s.cur.rowcount != n:
        raise Failed("bare insert added %d rows, expected %d" % (s.cur.rowcount, n))
    return dt


def chunk_bounds(s):
    """Every CHUNK-th audience email, and the last: the ranges of the chunked baseline."""
    rows = s.q("SELECT email FROM (SELECT a.email, row_number() OVER (ORDER BY a.email) AS rn,"
               "                      count(*) OVER () AS total"
               + AUDIENCE.format(range="").replace("\n  FROM", " FROM", 1)
               + ") x WHERE rn %% %s = 0 OR rn = total ORDER BY email", CHUNK)
    return [r[0] for r in rows]


def run_chunked(s, n, bounds):
    s.q("TRUNCATE public.queue_copy")
    added = 0
    lo = ""
    t0 = time.perf_counter()
    for hi in bounds:
        # autocommit: each statement is its own transaction
        s.q(BARE_INSERT.format(range=("AND c.email > %s AND c.email <= %s" if SEGMENT
                                      else "AND m.email > %s AND m.email <= %s")), lo, hi)
        added += s.cur.rowcount
        lo = hi
    dt = time.perf_counter() - t0
    if added != n:
        raise Failed("chunked insert added %d rows, expected %d" % (added, n))
    return dt


def split_pass(s, n, bid):
    """One more orchestrator run with pg_stat_statements tracking nested statements."""
    s.q("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def start_tracking():
        s.q("SELECT pg_stat_statements_reset()")
        s.q("SET pg_stat_statements.track = 'all'")
    try:
        dt = run_orchestrator(s, n, bid, start_tracking)
    finally:
        s.q("SET pg_stat_statements.track = 'none'")
    # the statements run inside CALL broadcast.run_tasks (toplevel = false)
    rows = s.q("SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g')"
               "  FROM pg_stat_statements"
               " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
               "   AND NOT toplevel"
               " ORDER BY total_exec_time DESC")
    return dt, rows


def describe(query):
    q = query.strip()
    if q.startswith("SELECT count(*) FROM ( SELECT DISTINCT ON"):
        return "count phase"
    if q.startswith("SELECT max(c.email), count(*)"):
        return "chunk bounds"
    if q.startswith("WITH src AS MATERIALIZED"):
        return "segment chunk"
    if q.startswith("SELECT count(*) FROM ( SELECT c.email"):
        return "count phase"
    if q.startswith("INSERT INTO broadcast.email_queue"):
        return "chunk insert"
    if q.startswith("UPDATE broadcast.broadcasts SET enqueued_count") or \
            q.startswith("UPDATE broadcast.broadcasts SET total_recipients"):
        return "broadcast counters"
    if "broadcast.tasks" in q[:300]:
        return "task bookkeeping"
    return "other"


def main():
    global SEGMENT, AUDIENCE, BARE_INSERT, COUNT_QUERY
    args = sys.argv[1:]
    mode = "full"
    port = 55999
    runs = None
    keep = False
    while args:
        a = args.pop(0)
        if a in ("small", "full"):
            mode = a
        elif a == "--port":
            port = int(args.pop(0))
        elif a == "--runs":
            runs = int(args.pop(0))
        elif a == "--keep":
            keep = True
        elif a == "--segment":
            SEGMENT = True
            BARE_INSERT = BARE_INSERT.replace(AUDIENCE, AUDIENCE_SEG)
            AUDIENCE = AUDIENCE_SEG
            COUNT_QUERY = "SELECT count(*)" + AUDIENCE.format(range="")
        else:
            print(__doc__)
            return 2
    # a kill still removes the cluster (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    n = 50000 if mode == "small" else 1000000
    runs = runs or (1 if mode == "small" else 3)

    cluster = Cluster(free_port(port))
    ok = False
    try:
        cluster.start()
        admin = cluster.connect("postgres")
        admin.cursor().execute("CREATE DATABASE " + DB)
        admin.close()
        s = Session(cluster.connect(DB))
        s.q("CREATE EXTENSION broadcast_engine")
        # run_tasks() commits with synchronous_commit off (a lost chunk is only
        # repeated); the baselines commit the same way
        s.q("SET synchronous_commit = off")
        log("cluster on port %d in %s (shared_buffers 2GB, max_wal_size 8GB, fsync on)"
            % (cluster.port, cluster.dir))

        t0 = time.perf_counter()
        memberships = setup(s, n)
        if SEGMENT:
            n = s.one(COUNT_QUERY)
        log("audience: %d recipients%s, %d memberships, built in %.1fs"
            % (n, " (segment)" if SEGMENT else "", memberships, time.perf_counter() - t0))
        chunk = int(s.one("SHOW broadcast_engine.chunk_size"))
        t0 = time.perf_counter()
        bounds = chunk_bounds(s)
        log("chunked baseline: %d ranges of %d emails (computed in %.2fs, untimed)"
            % (len(bounds), CHUNK, time.perf_counter() - t0))

        orch, bare, chunked, ckpts = [], [], [], []
        for i in range(runs):
            c0 = checkpoints(s)
            wait_autovacuum_idle(s)
            orch.append(run_orchestrator(s, n, "run%d" % (i + 1)))
            reset_queue(s)
            wait_autovacuum_idle(s)
            bare.append(run_bare(s, n))
            s.q("TRUNCATE public.queue_copy")
            wait_autovacuum_idle(s)
            chunked.append(run_chunked(s, n, bounds))
            s.q("TRUNCATE public.queue_copy")
            ckpts.append(checkpoints(s) - c0)
            log("run %d/%d: orchestrator %.2fs, bare %.2fs, chunked-bare %.2fs%s"
                % (i + 1, runs, orch[-1], bare[-1], chunked[-1],
                   ", %d checkpoint(s) during the run" % ckpts[-1] if ckpts[-1] else ""))

        t_count = statistics.median(s.timed(COUNT_QUERY) for _ in range(runs))
        wait_autovacuum_idle(s)
        t_split, split = split_pass(s, n, "split")
        reset_queue(s)

        mo, mb, mc = statistics.median(orch), statistics.median(bare), statistics.median(chunked)
        label = "median of %d" % runs if runs > 1 else "1 run"
        print("expand: %d recipients%s (%d memberships), chunk_size %d, %s"
              % (n, " of a segment" if SEGMENT else "", memberships, chunk, label))
        def fig(name, secs):
            return "%-13s %7.2f s %8.0f rows/s" % (name, secs, n / secs)
        bar = ""
        if mode == "full":
            bar = ", met" if mb / mo >= 0.5 else ", NOT MET"
        print("expand: %s   vs %s: speed %.2fx  (bar: >= 0.50%s)"
              % (fig("orchestrator", mo), fig("bare insert", mb), mb / mo, bar))
        print("expand: %s   vs %s: speed %.2fx  (the chunked floor: one commit per %d emails)"
              % (fig("orchestrator", mo), fig("chunked bare", mc), mc / mo, CHUNK))
        print("expand: count query alone %.2f s   vs orchestrator %.2f s: %.0f%% of it"
              % (t_count, mo, 100.0 * t_count / mo))
        total_ms = sum(r[1] for r in split) or 1.0
        print("expand: split pass (pg_stat_statements, track=all): orchestrator %.2f s, statements %.2f s"
              % (t_split, total_ms / 1000.0))
        groups = {}
        for calls, ms, nrows, query in split:
            g = groups.setdefault(describe(query), [0, 0.0, 0])
            g[0] += calls
            g[1] += ms
            g[2] += nrows
        for name, (calls, ms, nrows) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
            print("expand:   %-20s %6d calls  %8.2f s  %5.1f%%  %8.2f ms/call"
                  % (name, calls, ms / 1000.0, 100.0 * ms / total_ms, ms / max(calls, 1)))
        if any(ckpts):
            print("expand: note: %d checkpoint(s) happened during the measured runs" % sum(ckpts))
        ok = True
    except Failed as e:
        print("expand: FAILED: %s" % e)
    except Exception as e:  # noqa: BLE001 - any error fails the benchmark
        print("expand: ERROR: %s: %s" % (type(e).__name__, e))
        print(cluster.tail_log())
    finally:
        if keep:
            log("kept %s (port %d); stop it with pg_ctl -D %s stop" % (cluster.dir, cluster.port, cluster.data))
        else:
            cluster.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
