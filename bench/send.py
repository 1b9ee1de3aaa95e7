#!/usr/bin/env python3
"""End-to-end sending benchmark for broadcast_engine.

  bench/send.py [small|full] [--port P]

In one run, on one preloaded cluster with 2 sender workers:

1. end to end: a broadcast of N personalised messages (SendGrid-shaped
   requests) from schedule to the last message_history row, through the
   scheduler, the senders and libcurl, into test/mocks/fastmock (a
   single-threaded epoll HTTP server on loopback); the senders' memory (RSS)
   before and after;
2. the database path alone, as the same-run baseline for the engine's cost
   per message: claiming 1,000 queue rows, writing their history and
   deleting them in one transaction (what a sender's two transactions do,
   without rendering or HTTP), against the design it replaces: one
   transaction per row.

small: N = 20,000; full: N = 1,000,000 (the database-path figures use
200,000 rows, the per-row baseline 10,000).
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


def end_to_end(c, db, n, endpoint):
    setup(db, "e2e", n, endpoint)
    senders = [x[0] for x in db.q("SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'broadcast_engine sender%%'")]
    db.q("SELECT broadcast.create_broadcast('e2e', 'b', 'b', '{l}', 'sg', 't')")
    t0 = time.time()
    db.q("SELECT broadcast.schedule_broadcast('e2e', 'b')")
    # after a tenth of the send the caches are warm: memory from there on should stay flat
    wait_for("a tenth sent", lambda: db.one(
        "SELECT sent_count FROM broadcast.broadcasts WHERE workspace_id = 'e2e'") >= n // 10, 3600, 0.05)
    mem0 = sum(private_kb(p) for p in senders)
    wait_for("broadcast sent", lambda: db.one(
        "SELECT sent_count + failed_count FROM broadcast.broadcasts WHERE workspace_id = 'e2e'") >= n, 3600, 0.2)
    took = time.time() - t0
    mem1 = sum(private_kb(p) for p in senders)
    sent, failed = db.row("SELECT sent_count, failed_count FROM broadcast.broadcasts WHERE workspace_id = 'e2e'")
    hist = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'e2e' AND status = 'sent'")
    if sent != n or hist != n:
        raise RuntimeError("end to end: %d sent, %d failed, %d history rows, expected %d" % (sent, failed, hist, n))
    print("send_e2e: %d messages in %.2f s = %.0f messages/s (scheduled -> last history row, 2 senders, SendGrid-shaped, 5 KB template)"
          % (n, took, n / took))
    print("send_e2e_memory: the 2 senders' private memory %d kB after %d messages, %d kB after %d"
          % (mem0, n // 10, mem1, n))
    return n / took


def db_path(db, rows, per_row):
    """Claim, history, delete: batched (1,000 per transaction) vs one row per transaction."""
    db.q("SELECT broadcast.create_workspace('dbp', 'DB path')")
    db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id)
            SELECT 'dbp', 'b', 'u' || i || '@example.com', 'sg', 'l', gen_random_uuid() FROM generate_series(1, %s) i""",
         rows + per_row)
    db.q("VACUUM ANALYZE broadcast.email_queue")
    batched = """
        WITH c AS (
          UPDATE broadcast.email_queue q SET status = 'sending', attempts = q.attempts + 1,
                 next_attempt_at = now() + interval '60 s'
           WHERE q.ctid = ANY (ARRAY(SELECT d.ctid FROM broadcast.email_queue d
                  WHERE d.workspace_id = 'dbp' AND d.integration_id = 'sg' AND d.status = 'pending'
                    AND d.next_attempt_at <= now() ORDER BY d.next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED))
          RETURNING q.broadcast_id, q.email, q.message_id, q.list_id)
        SELECT array_agg(broadcast_id), array_agg(email), array_agg(message_id::text), array_agg(list_id) FROM c"""
    record = """
        WITH r AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS r(b, e, m, l)),
        h AS (INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, email, list_id,
                     integration_id, provider, provider_message_id, status, sent_at)
              SELECT 'dbp', r.m::uuid, r.b, r.e, r.l, 'sg', 'sendgrid', 'x-' || r.m, 'sent', now() FROM r
              ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING 1)
        DELETE FROM broadcast.email_queue q USING r
         WHERE q.workspace_id = 'dbp' AND q.broadcast_id = r.b AND q.email = r.e AND (SELECT count(*) FROM h) >= 0"""
    conn = db.conn
    conn.autocommit = False
    cur = conn.cursor()

    def step(limit):
        cur.execute(batched % limit)
        b, e, m, l = cur.fetchone()
        conn.commit()
        if not b:
            return 0
        cur.execute(record, (b, e, m, l))
        conn.commit()
        return len(b)

    t0 = time.perf_counter()
    done = 0
    while done < rows:
        got = step(1000)
        if got == 0:
            break
        done += got
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = 0
    while single < per_row:
        if step(1) == 0:
            break
        single += 1
    t_row = time.perf_counter() - t0
    conn.autocommit = True
    rb = done / t_batch
    rr = single / t_row
    print("send_db_path: batched claim+history+delete %d rows in %.2f s = %.0f rows/s; one row per transaction "
          "(baseline) %d rows in %.2f s = %.0f rows/s; ratio %.1f" % (done, t_batch, rb, single, t_row, rr, rb / rr))
    return rb, rr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55998)
    a = ap.parse_args()
    n, rows, per_row = (20000, 20000, 2000) if a.mode == "small" else (1000000, 200000, 10000)

    fastmock = subprocess.Popen([build_fastmock(), "--port", "0"], stdout=subprocess.PIPE, text=True)
    ready = fastmock.stdout.readline()
    if not ready.startswith("READY"):
        raise RuntimeError("fastmock did not start: %r" % ready)
    endpoint = "http://127.0.0.1:%s" % ready.split("port=")[1].strip()
    c = Cluster(a.port, conf={
        "broadcast_engine.sender_workers": "2",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.scheduler_tick": "'1s'",
        "broadcast_engine.drain_poll": "'500ms'",
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
        end_to_end(c, db, n, endpoint)
        db_path(db, rows, per_row)
    finally:
        c.destroy()
        fastmock.terminate()
        print("fastmock: " + (fastmock.communicate(timeout=10)[0].strip().replace("\n", " ")))


if __name__ == "__main__":
    main()
