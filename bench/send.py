#!/usr/bin/env python3
"""End-to-end sending benchmark for broadcast_engine.

  bench/send.py [small|full] [--port P] [--rows N] [--runs R]

On one preloaded cluster with SENDERS (2) sender workers and
test/mocks/fastmock (a single-threaded epoll HTTP server on loopback
answering like SendGrid):

1. end to end, R times back to back (3): a broadcast of N personalised
   messages (5 KB template, SendGrid-shaped requests) from
   schedule_broadcast to the last message_history row, through the
   scheduler, the senders and libcurl.  Per run: messages/s, and from the
   senders' stage timings (broadcast.workers) the claim latency per batch,
   the budget in microseconds per message of each stage (claim, render,
   send, record; summed over the senders), and the database path (claim +
   record statement time per row).  The last run must be within 10% of the
   first (no queue or index bloat; checked in full mode); the senders'
   private memory is read after a tenth of the first run and at the end of
   each (flat).  The mock's byte count gives the engine's request size;
2. the ceiling client (bench/ceiling.c, libpq + libcurl multi), as
   SENDERS processes at once (FOR UPDATE SKIP LOCKED gives each its own
   rows), each claiming 1,000 rows, posting a body of the engine's request
   size for each (64 in flight, keep-alive), then recording history and
   deleting them in the claim's transaction; no rendering.  Twice, R runs
   each: (a) on N rows of the engine's own tables; (b) on N rows of a
   minimal schema the benchmark creates (ceil.queue: an identity key and
   one partial index on due time; ceil.history: a primary key only);
3. the ceiling client's statements without HTTP (claim, history and
   delete of 1,000 rows in one transaction), SENDERS processes, on both
   schemas;
4. the database path against its same-run baseline, in a second database
   (which the background workers do not serve) through
   CALL broadcast.send_queue(): the same code with sender_batch_size 1,000
   against sender_batch_size 1 (one row per transaction), counting only
   the claim and record statements' time (send_queue's DEBUG1 report).

5. with history (full mode: 20,000,000 rows; small: 200,000;
   --history-rows N): after the runs above, N rows of the same workspace's
   history are made in bulk (not sent), spread evenly over the current
   month and the nine before it, in their monthly partitions; then the
   end-to-end runs again, R times, against the empty-history median.  The
   current month's partition then holds a tenth of them, so its indexes
   are as deep as a busy tenant's.

Then the engine's median rate against both ceilings' medians, and (full
mode, or with --rows) the issue's goals as met / not met.

small: N = 20,000, one run (CI: proves it runs, no speed checks); full:
N = 1,000,000, 3 runs; the database path uses 100,000 rows batched and
2,000 (small: 20,000 and 500) one by one.  --rows N sets N (and the
database path's rows to min(N, 100,000)) with 3 runs unless --runs.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# the engine's sender workers, and as many ceiling processes (BENCH_SENDERS
# to try more senders than cores: issue 13's "overlap I/O with CPU")
SENDERS = max(1, min(16, int(os.environ.get("BENCH_SENDERS", "2"))))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
from belib import DB, Cluster, wait_for  # noqa: E402
from history import MONTHS as HISTORY_MONTHS, make_history  # noqa: E402


def cpu_ticks():
    """The machine's busy and total CPU time, in clock ticks (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def mock_stats(endpoint):
    with urllib.request.urlopen(endpoint + "/_fastmock/stats", timeout=10) as r:
        j = json.loads(r.read())
    return j["requests"], j["bytes"]


def private_kb(pid):
    """A process's private anonymous memory (its heap), without shared buffers."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def build_fastmock():
    r = subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "test", "mocks")], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("building fastmock failed: " + r.stderr)
    return os.path.join(ROOT, "test", "mocks", "build", "fastmock")


def setup(db, ws, n, endpoint):
    db.q("""SELECT broadcast.create_workspace(%s, 'Bench', 'UTC', '{"sending_domain": "news.bench.test",
            "unsubscribe_base_url": "https://bench.test/u", "default_from_email": "news@bench.test",
            "default_from_name": "Bench News"}')""", ws)
    db.q("SELECT broadcast.create_list(%s, 'l', 'Readers')", ws)
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)
            SELECT %s, 'u' || i || '@example.com', (ARRAY['Ada','Grace','Alan','Barbara'])[1 + i %% 4],
                   jsonb_build_object('plan', CASE WHEN i %% 5 = 0 THEN 'pro' ELSE 'free' END, 'visits', i %% 40)
              FROM generate_series(1, %s) i""", ws, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'l', 'u' || i || '@example.com' FROM generate_series(1, %s) i""", ws, n)
    with open(os.path.join(HERE, "templates", "newsletter_5k.liquid")) as f:
        html = f.read()
    db.q("SELECT broadcast.create_template(%s, 't', 'Your week, {{ contact.first_name }}', %s)", ws, html)
    db.q("SELECT broadcast.create_integration(%s, 'sg', 'sendgrid', %s, 'SG.bench')",
         ws, '{"endpoint": "%s"}' % endpoint)
    db.q("VACUUM ANALYZE")


def build_ceiling():
    out = os.path.join(HERE, "build", "ceiling")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    r = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-I/usr/include/postgresql",
                        "-o", out, os.path.join(HERE, "ceiling.c"), "-lpq", "-lcurl"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("building the ceiling client failed: " + r.stderr)
    return out


def stages(db):
    """The senders' totals: messages, batches, claim/render/send/record ms."""
    return db.row("""SELECT coalesce(sum(messages), 0)::bigint, coalesce(sum(batches), 0)::bigint,
                            coalesce(sum(claim_ms), 0), coalesce(sum(render_ms), 0),
                            coalesce(sum(send_ms), 0), coalesce(sum(record_ms), 0)
                       FROM broadcast.workers WHERE kind = 'sender'""")


def end_to_end(db, n, k, senders, mem, endpoint):
    """One broadcast of n from schedule to the last history row; returns its figures."""
    bid = "b%d" % k
    db.q("SELECT broadcast.create_broadcast('e2e', %s, %s, '{l}', 'sg', 't')", bid, bid)
    s0 = stages(db)
    m0 = mock_stats(endpoint)
    c0 = cpu_ticks()
    t0 = time.time()
    db.q("SELECT broadcast.schedule_broadcast('e2e', %s)", bid)
    # after a tenth of a send the caches are warm: memory from there on should stay flat
    wait_for("a tenth sent", lambda: db.one(
        "SELECT sent_count FROM broadcast.broadcasts WHERE workspace_id = 'e2e' AND broadcast_id = %s",
        bid) >= n // 10, 3600, 0.05)
    mem.append(sum(private_kb(p) for p in senders))
    wait_for("broadcast sent", lambda: db.one(
        "SELECT sent_count + failed_count FROM broadcast.broadcasts WHERE workspace_id = 'e2e' AND broadcast_id = %s",
        bid) >= n, 3600, 0.1)
    took = time.time() - t0
    c1 = cpu_ticks()
    m1 = mock_stats(endpoint)
    mem.append(sum(private_kb(p) for p in senders))
    s1 = stages(db)
    sent, failed = db.row("SELECT sent_count, failed_count FROM broadcast.broadcasts"
                          " WHERE workspace_id = 'e2e' AND broadcast_id = %s", bid)
    hist = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'e2e'"
                  " AND broadcast_id = %s AND status = 'sent'", bid)
    if sent != n or hist != n:
        raise RuntimeError("end to end: %d sent, %d failed, %d history rows, expected %d" % (sent, failed, hist, n))
    msgs, batches = s1[0] - s0[0], max(s1[1] - s0[1], 1)
    claim, render, sendt, record = (s1[i] - s0[i] for i in range(2, 6))
    f = {"rate": n / took, "took": took, "claim_ms": claim / batches, "record_ms": record / batches,
         "batch": msgs / batches, "db_rows_s": msgs / ((claim + record) / 1000.0),
         "req_bytes": (m1[1] - m0[1]) / max(m1[0] - m0[0], 1)}
    # us per message of each stage, summed over the senders (stages of one sender follow each other)
    per = max(msgs, 1)
    f["us"] = {"claim": claim * 1000.0 / per, "render": render * 1000.0 / per,
               "send": sendt * 1000.0 / per, "record": record * 1000.0 / per}
    hz = os.sysconf("SC_CLK_TCK")
    f["cpu_us"] = (c1[0] - c0[0]) / hz * 1e6 / n
    f["cpu_busy"] = (c1[0] - c0[0]) / max(c1[1] - c0[1], 1)
    print("send_e2e run %d: %d messages in %.2f s = %.0f messages/s; %d batches of %.0f: claim %.1f ms, "
          "render %.1f ms, send %.1f ms, record %.1f ms per batch (database path %.0f rows/s of statement time)"
          % (k, n, took, f["rate"], batches, f["batch"], f["claim_ms"], render / batches, sendt / batches,
             f["record_ms"], f["db_rows_s"]))
    print("send_e2e_budget run %d: claim %.1f us + render %.1f us + send %.1f us + record %.1f us per message "
          "(stage time summed over %d senders; wall time %.1f us per message; machine CPU %.1f us per message, "
          "%.0f%% busy; requests of %.0f bytes)"
          % (k, f["us"]["claim"], f["us"]["render"], f["us"]["send"], f["us"]["record"], SENDERS,
             1e6 / f["rate"], f["cpu_us"], 100 * f["cpu_busy"], f["req_bytes"]))
    db.q("VACUUM broadcast.email_queue")
    return f


MINIMAL_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ceil;
CREATE TABLE IF NOT EXISTS ceil.queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id text NOT NULL,
    broadcast_id text NOT NULL,
    email text NOT NULL,
    list_id text,
    message_id uuid NOT NULL,
    status "char" NOT NULL DEFAULT 'p',
    due_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS queue_due ON ceil.queue (due_at) WHERE status = 'p';
CREATE TABLE IF NOT EXISTS ceil.history (
    workspace_id text NOT NULL,
    message_id uuid NOT NULL,
    broadcast_id text NOT NULL,
    email text NOT NULL,
    integration_id text NOT NULL,
    provider_message_id text,
    status "char" NOT NULL,
    sent_at timestamptz,
    PRIMARY KEY (workspace_id, message_id));
"""


def fill(db, schema, n, bid):
    """n due rows for the ceiling client, time-ordered message ids like the engine's."""
    if schema == "engine":
        db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
                SELECT 'ceil', %s, 'u' || i || '@example.com', 'none', 'l', broadcast._uuid_v7()
                  FROM generate_series(1, %s) i""", bid, n)
        db.q("VACUUM ANALYZE broadcast.email_queue")
    else:
        db.q("""INSERT INTO ceil.queue (workspace_id, broadcast_id, email, list_id, message_id)
                SELECT 'ceil', %s, 'u' || i || '@example.com', 'l', broadcast._uuid_v7()
                  FROM generate_series(1, %s) i""", bid, n)
        db.q("VACUUM ANALYZE ceil.queue")


def left_and_recorded(db, schema, bid):
    if schema == "engine":
        return (db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'ceil' AND broadcast_id = %s",
                       bid),
                db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'ceil'"
                       " AND broadcast_id = %s", bid))
    return (db.one("SELECT count(*) FROM ceil.queue WHERE broadcast_id = %s", bid),
            db.one("SELECT count(*) FROM ceil.history WHERE broadcast_id = %s", bid))


def run_ceiling(c, db, n, url, exe, schema, bid, body):
    """SENDERS ceiling processes at once on n fresh rows of schema; returns rows/s over the wall time."""
    fill(db, schema, n, bid)
    conninfo = "host=127.0.0.1 port=%d dbname=%s user=postgres" % (c.port, c.dbname)
    t0 = time.time()
    procs = [subprocess.Popen([exe, conninfo, url, "ceil", "none", "1000", "64", str(body), schema],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(SENDERS)]
    outs = [p.communicate(timeout=3600) for p in procs]
    took = time.time() - t0
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError("ceiling client failed: " + err)
    left, hist = left_and_recorded(db, schema, bid)
    if left != 0 or hist != n:
        raise RuntimeError("ceiling client (%s): %d rows left, %d history rows, expected 0 and %d"
                           % (schema, left, hist, n))
    done = [int(out.split("ceiling: ")[1].split()[0]) for out, _ in outs]
    return n / took, done


def ceilings(c, db, n, endpoint, exe, runs, body):
    """The ceiling client on both schemas, runs times each; their medians."""
    db.q("SELECT broadcast.create_workspace('ceil', 'Ceiling')")
    db.q(MINIMAL_SCHEMA)
    out = {}
    for schema in ("engine", "minimal"):
        rates = []
        for k in range(1, runs + 1):
            rate, done = run_ceiling(c, db, n, endpoint + "/v3/mail/send", exe, schema, "c%s%d" % (schema[0], k), body)
            rates.append(rate)
            print("send_ceiling %s tables run %d: %d messages in %d processes (%s) = %.0f messages/s, bodies of %d bytes"
                  % (schema, k, n, SENDERS, " + ".join(str(d) for d in done), rate, body))
        out[schema] = sorted(rates)[len(rates) // 2]
    return out


def ceilings_db(c, db, n, exe):
    """The ceiling client's statements alone (no HTTP), SENDERS processes, on both schemas."""
    out = {}
    for schema in ("engine", "minimal"):
        rate, _ = run_ceiling(c, db, n, "-", exe, schema, "d" + schema[0], 0)
        out[schema] = rate
        print("send_db_path ceiling client without HTTP on %s tables (claim + history + delete, one transaction "
              "per 1,000, %d processes): %d rows at %.0f rows/s" % (schema, SENDERS, n, rate))
    return out


def send_queue_stages(conn, batch, bid):
    """CALL send_queue with a batch size; the claim and record time from its DEBUG1 report."""
    conn.notices.clear()
    cur = conn.cursor()
    cur.execute("SET broadcast_engine.sender_batch_size = %d" % batch)
    cur.execute("SET client_min_messages = debug1")
    cur.execute("SELECT broadcast.schedule_broadcast('dbp', %s)", (bid,))
    cur.execute("CALL broadcast.run_tasks(600)")
    cur.execute("CALL broadcast.send_queue(600)")
    cur.execute("RESET client_min_messages")
    cur.execute("SELECT sent_count FROM broadcast.broadcasts WHERE workspace_id = 'dbp' AND broadcast_id = %s",
                (bid,))
    sent = cur.fetchone()[0]
    rep = [x for x in conn.notices if "send_queue handled" in x]
    det = [x for x in conn.notices if "DETAIL:  claim" in x]
    if not rep or not det:
        raise RuntimeError("send_queue did not report its stages: %r" % conn.notices[-5:])
    text = det[-1].split("DETAIL:")[1]
    ms = {k: float(text.split(k + " ")[1].split(" ms")[0]) for k in ("claim", "render", "send", "record")}
    msgs = int(rep[-1].split("handled ")[1].split()[0])
    return sent, msgs, ms


def db_path(c, endpoint, rows, per_row):
    """The sender's statements, batched against one row per transaction, in a database no worker serves."""
    DB(c.connect("postgres")).q("CREATE DATABASE be_dbp")
    db = DB(c.connect("be_dbp"))
    db.q("CREATE EXTENSION broadcast_engine")
    setup(db, "dbp", rows, endpoint)
    db.q("SELECT broadcast.create_list('dbp', 'few', 'Few')")
    db.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email)"
         " SELECT 'dbp', 'few', 'u' || i || '@example.com' FROM generate_series(1, %s) i", per_row)
    db.q("SELECT broadcast.create_broadcast('dbp', 'batched', 'batched', '{l}', 'sg', 't')")
    db.q("SELECT broadcast.create_broadcast('dbp', 'per_row', 'per_row', '{few}', 'sg', 't')")
    out = {}
    for bid, batch, n in (("batched", 1000, rows), ("per_row", 1, per_row)):
        sent, msgs, ms = send_queue_stages(db.conn, batch, bid)
        if sent != n or msgs != n:
            raise RuntimeError("database path %s: %d sent, %d handled, expected %d" % (bid, sent, msgs, n))
        out[bid] = msgs / ((ms["claim"] + ms["record"]) / 1000.0)
        print("send_db_path %s (sender_batch_size %d): %d rows, claim %.0f ms + record %.0f ms = %.0f rows/s "
              "(render %.0f ms and send %.0f ms not counted)"
              % (bid, batch, msgs, ms["claim"], ms["record"], out[bid], ms["render"], ms["send"]))
    print("send_db_path: batched %.0f rows/s vs one row per transaction %.0f rows/s: ratio %.1f"
          % (out["batched"], out["per_row"], out["batched"] / out["per_row"]))
    return out


def fill_history(db, total):
    """total history rows of the e2e workspace over HISTORY_MONTHS months up to this one
    (bench/history.py's rows); returns seconds taken."""
    t = time.time()
    make_history(db, "e2e", "old", total // HISTORY_MONTHS, HISTORY_MONTHS)
    return time.time() - t


# a whole run's WAL without a checkpoint in the middle of it (also bench/index_cost.py)
SERVER_CONF = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "'30min'",
    "log_min_messages": "warning",
}


def goal(what, ok, figure):
    print("send_goal %s: %s (%s)" % (what, "met" if ok else "NOT met", figure))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55998)
    ap.add_argument("--connections", type=int, default=64,
                    help="broadcast_engine.max_connections (the ceiling client also keeps 64 in flight)")
    ap.add_argument("--rows", type=int, help="messages per run (default: 20,000 small, 1,000,000 full)")
    ap.add_argument("--runs", type=int, help="runs of each (default: 1 small, 3 full or with --rows)")
    ap.add_argument("--history-rows", type=int,
                    help="history rows made before the runs with history (default: 200,000 small, "
                    "20,000,000 full, 0 with --rows)")
    a = ap.parse_args()
    n, rows, per_row = (20000, 20000, 500) if a.mode == "small" else (1000000, 100000, 2000)
    runs = 1 if a.mode == "small" else 3
    if a.rows is not None:
        if not 1000 <= a.rows <= 10000000:
            ap.error("--rows must be between 1,000 and 10,000,000")
        n, rows, per_row, runs = a.rows, min(a.rows, 100000), 2000, 3
    if a.runs is not None:
        if not 1 <= a.runs <= 9:
            ap.error("--runs must be between 1 and 9")
        runs = a.runs
    goals = a.mode == "full" or a.rows is not None
    hrows = 200000 if a.mode == "small" else (0 if a.rows is not None else 20000000)
    if a.history_rows is not None:
        if a.history_rows != 0 and not HISTORY_MONTHS <= a.history_rows <= 100000000:
            ap.error("--history-rows must be 0 or between 10 and 100,000,000")
        hrows = a.history_rows

    exe = build_ceiling()
    fastmock = subprocess.Popen([build_fastmock(), "--port", "0"], stdout=subprocess.PIPE, text=True)
    ready = fastmock.stdout.readline()
    if not ready.startswith("READY"):
        raise RuntimeError("fastmock did not start: %r" % ready)
    endpoint = "http://127.0.0.1:%s" % ready.split("port=")[1].strip()
    c = Cluster(a.port, conf={
        "broadcast_engine.sender_workers": str(SENDERS),
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.allow_private_endpoints": "on",
        "broadcast_engine.scheduler_tick": "'1s'",
        "broadcast_engine.drain_poll": "'500ms'",
        "broadcast_engine.max_connections": str(a.connections),
        **SERVER_CONF,
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("senders", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                           " WHERE backend_type LIKE 'broadcast_engine sender%%'") == SENDERS, 60)
        senders = [x[0] for x in db.q("SELECT pid FROM pg_stat_activity"
                                      " WHERE backend_type LIKE 'broadcast_engine sender%%'")]
        setup(db, "e2e", n, endpoint)
        mem = []
        res = [end_to_end(db, n, k, senders, mem, endpoint) for k in range(1, runs + 1)]
        print("send_e2e_memory: the %d senders' private memory (kB) after a tenth and at the end of each run: %s; "
              "%d kB after %d messages, %d kB after %d" % (
                  SENDERS, ", ".join("%d/%d" % (mem[i], mem[i + 1]) for i in range(0, len(mem), 2)),
                  mem[0], n // 10, mem[-1], runs * n))
        last = res[-1]["rate"] / res[0]["rate"]
        if runs > 1:
            print("send_e2e_back_to_back: run %d at %.2f of run 1's rate (goal: within 10%%)" % (runs, last))
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        rate = med([r["rate"] for r in res])
        budget = {k: med([r["us"][k] for r in res]) for k in ("claim", "render", "send", "record")}
        print("send_e2e_budget: medians per message: claim %.1f us, render %.1f us, send %.1f us, record %.1f us "
              "(sum %.1f us over %d senders = %.1f us of each sender's time per message); machine CPU %.1f us "
              "per message" % (budget["claim"], budget["render"], budget["send"], budget["record"],
                               sum(budget.values()), SENDERS, sum(budget.values()) / SENDERS,
                               med([r["cpu_us"] for r in res])))
        # the engine's requests less about 200 bytes of headers, which the ceiling's carry too
        body = max(int(med([r["req_bytes"] for r in res])) - 200, 0)
        ceil = ceilings(c, db, n, endpoint, exe, runs, body)
        print("send_e2e: engine %.0f msg/s = %.2f of the ceiling on engine tables (%.0f msg/s, %d processes) "
              "= %.2f of the minimal-schema ceiling (%.0f msg/s)"
              % (rate, rate / ceil["engine"], ceil["engine"], SENDERS, rate / ceil["minimal"], ceil["minimal"]))
        ceilings_db(c, db, rows, exe)
        dbp = db_path(c, endpoint, rows, per_row)
        hist_ratio = None
        if hrows > 0:
            took = fill_history(db, hrows)
            size = db.one("SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits"
                          " WHERE inhparent = 'broadcast.message_history'::regclass")
            print("send_history: %d history rows made over %d months in %.0f s (history %s with indexes)"
                  % (hrows, HISTORY_MONTHS, took, size))
            hres = [end_to_end(db, n, k, senders, mem, endpoint) for k in range(runs + 1, 2 * runs + 1)]
            hrate = med([r["rate"] for r in hres])
            hist_ratio = hrate / rate
            print("send_history: with %d history rows %.0f msg/s = %.2f of the rate with an empty history "
                  "(%.0f msg/s; medians of %d)" % (hrows, hrate, hist_ratio, rate, runs))
        if goals:
            goal("end to end >= 30,000 messages/s", rate >= 30000, "%.0f messages/s" % rate)
            goal("end to end >= 0.7 x the minimal-schema ceiling", rate >= 0.7 * ceil["minimal"],
                 "%.2f x" % (rate / ceil["minimal"]))
            goal("database path >= 100,000 rows/s", dbp["batched"] >= 100000, "%.0f rows/s" % dbp["batched"])
            goal("batched / one row per transaction >= 25x", dbp["batched"] / dbp["per_row"] >= 25,
                 "%.1fx" % (dbp["batched"] / dbp["per_row"]))
            if runs > 1:
                goal("last run within 10% of the first", last >= 0.9, "%.2f" % last)
            if hist_ratio is not None:
                goal("with %d history rows within 10%% of the empty-history rate" % hrows, hist_ratio >= 0.9,
                     "%.2f" % hist_ratio)
        if a.mode == "full" and runs > 1 and last < 0.9:
            raise RuntimeError("the last back-to-back run is %.2f of the first's rate" % last)
    finally:
        c.destroy()
        fastmock.terminate()
        print("fastmock: " + (fastmock.communicate(timeout=10)[0].strip().replace("\n", " ")))


if __name__ == "__main__":
    main()
