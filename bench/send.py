#!/usr/bin/env python3
"""End-to-end sending benchmark for broadcast_engine.

  bench/send.py [small|full] [--port P]

On one preloaded cluster with 2 sender workers and test/mocks/fastmock (a
single-threaded epoll HTTP server on loopback answering like SendGrid):

1. end to end, three times back to back: a broadcast of N personalised
   messages (5 KB template, SendGrid-shaped requests) from
   schedule_broadcast to the last message_history row, through the
   scheduler, the senders and libcurl.  Per run: messages/s, and from the
   senders' stage timings (broadcast.workers) the claim latency per batch
   and the database path (claim + record statement time per row).  The
   third run must be within 10% of the first (no queue or index bloat); the
   senders' private memory is read after a tenth of the first run and at
   the end of the third (flat);
2. the ceiling client (bench/ceiling.c, libpq + libcurl multi, one
   process): claims 1,000 rows, posts each (64 in flight, keep-alive), then
   records history and deletes them in the claim's transaction; no
   rendering, tiny bodies; run on N queue rows of the same cluster and mock;
3. the ceiling client's statements without HTTP (claim, history and
   delete of 1,000 rows in one transaction), for scale;
4. the database path against its same-run baseline, in a second database
   (which the background workers do not serve) through
   CALL broadcast.send_queue(): the same code with sender_batch_size 1,000
   against sender_batch_size 1 (one row per transaction), counting only
   the claim and record statements' time (send_queue's DEBUG1 report).

small: N = 20,000 (CI: proves it runs); full: N = 1,000,000; the database
path uses 100,000 rows batched and 2,000 (small: 20,000 and 500) one by one.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
from belib import DB, Cluster, wait_for  # noqa: E402


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


def end_to_end(db, n, k, senders, mem):
    """One broadcast of n from schedule to the last history row; returns its figures."""
    bid = "b%d" % k
    db.q("SELECT broadcast.create_broadcast('e2e', %s, %s, '{l}', 'sg', 't')", bid, bid)
    s0 = stages(db)
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
         "batch": msgs / batches, "db_rows_s": msgs / ((claim + record) / 1000.0)}
    print("send_e2e run %d: %d messages in %.2f s = %.0f messages/s; %d batches of %.0f: claim %.1f ms, "
          "render %.1f ms, send %.1f ms, record %.1f ms per batch (database path %.0f rows/s of statement time)"
          % (k, n, took, f["rate"], batches, f["batch"], f["claim_ms"], render / batches, sendt / batches,
             f["record_ms"], f["db_rows_s"]))
    db.q("VACUUM broadcast.email_queue")
    return f


def ceiling(c, db, n, endpoint, exe):
    """The ceiling client on n queue rows of a pair no sender serves (integration 'none')."""
    db.q("SELECT broadcast.create_workspace('ceil', 'Ceiling')")
    db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
            SELECT 'ceil', 'c', 'u' || i || '@example.com', 'none', 'l', gen_random_uuid()
              FROM generate_series(1, %s) i""", n)
    db.q("VACUUM ANALYZE broadcast.email_queue")
    conninfo = "host=127.0.0.1 port=%d dbname=%s user=postgres" % (c.port, c.dbname)
    r = subprocess.run([exe, conninfo, endpoint + "/v3/mail/send", "ceil", "none", "1000", "64"],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError("ceiling client failed: " + r.stderr)
    print("send_" + r.stdout.strip())
    left = db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'ceil'")
    hist = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'ceil'")
    if left != 0 or hist != n:
        raise RuntimeError("ceiling client: %d rows left, %d history rows, expected 0 and %d" % (left, hist, n))
    return float(r.stdout.split(" = ")[1].split()[0])


def ceiling_db(c, db, n, exe):
    """The ceiling client's statements alone (no HTTP): claim, history, delete in one transaction."""
    db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
            SELECT 'ceil', 'd', 'u' || i || '@example.com', 'none', 'l', gen_random_uuid()
              FROM generate_series(1, %s) i""", n)
    db.q("VACUUM ANALYZE broadcast.email_queue")
    conninfo = "host=127.0.0.1 port=%d dbname=%s user=postgres" % (c.port, c.dbname)
    r = subprocess.run([exe, conninfo, "-", "ceil", "none", "1000", "64"], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError("ceiling client (database only) failed: " + r.stderr)
    rate = float(r.stdout.split(" = ")[1].split()[0])
    print("send_db_path ceiling client without HTTP (claim + history + delete, one transaction per 1,000): "
          "%d rows at %.0f rows/s" % (n, rate))
    return rate


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55998)
    ap.add_argument("--connections", type=int, default=64,
                    help="broadcast_engine.max_connections (the ceiling client also keeps 64 in flight)")
    a = ap.parse_args()
    n, rows, per_row = (20000, 20000, 500) if a.mode == "small" else (1000000, 100000, 2000)

    exe = build_ceiling()
    fastmock = subprocess.Popen([build_fastmock(), "--port", "0"], stdout=subprocess.PIPE, text=True)
    ready = fastmock.stdout.readline()
    if not ready.startswith("READY"):
        raise RuntimeError("fastmock did not start: %r" % ready)
    endpoint = "http://127.0.0.1:%s" % ready.split("port=")[1].strip()
    c = Cluster(a.port, conf={
        "broadcast_engine.sender_workers": "2",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.allow_private_endpoints": "on",
        "broadcast_engine.scheduler_tick": "'1s'",
        "broadcast_engine.drain_poll": "'500ms'",
        "broadcast_engine.max_connections": str(a.connections),
        "shared_buffers": "1GB",
        "max_wal_size": "8GB",
        "checkpoint_timeout": "'30min'",
        "log_min_messages": "warning",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("senders", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                           " WHERE backend_type LIKE 'broadcast_engine sender%%'") == 2, 60)
        senders = [x[0] for x in db.q("SELECT pid FROM pg_stat_activity"
                                      " WHERE backend_type LIKE 'broadcast_engine sender%%'")]
        setup(db, "e2e", n, endpoint)
        mem = []
        runs = [end_to_end(db, n, k, senders, mem) for k in (1, 2, 3)]
        print("send_e2e_memory: the 2 senders' private memory (kB) after a tenth and at the end of each run: %s; "
              "%d kB after %d messages, %d kB after %d" % (
                  ", ".join("%d/%d" % (mem[i], mem[i + 1]) for i in (0, 2, 4)), mem[0], n // 10, mem[-1], 3 * n))
        third = runs[2]["rate"] / runs[0]["rate"]
        print("send_e2e_back_to_back: run 3 at %.2f of run 1's rate (goal: within 10%%)" % third)
        ceil_rate = ceiling(c, db, n, endpoint, exe)
        med = sorted(r["rate"] for r in runs)[1]
        print("send_e2e: median of 3 runs %.0f messages/s = %.2f of the ceiling client's %.0f"
              % (med, med / ceil_rate, ceil_rate))
        ceiling_db(c, db, rows, exe)
        db_path(c, endpoint, rows, per_row)
        if a.mode == "full" and third < 0.9:
            raise RuntimeError("the third back-to-back run is %.2f of the first's rate" % third)
    finally:
        c.destroy()
        fastmock.terminate()
        print("fastmock: " + (fastmock.communicate(timeout=10)[0].strip().replace("\n", " ")))


if __name__ == "__main__":
    main()
