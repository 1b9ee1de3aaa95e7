"""Segments, follow-ups and test sends on a live cluster, through an SMTP sink.

Covers: a broadcast to a segment plus an exclusion list expanded by the
scheduler worker in small chunks and sent by a sender worker, each matching
reachable contact exactly once and nobody else; a follow-up to those who did
not open it, with a new subject, each once; a test send rendered with a
sample contact's data that leaves the original's counters and statistics as
they were; the scheduler killed with SIGKILL while it expands a segment
broadcast, which afterwards holds each matching contact exactly once.
"""
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
N = 120


def start_sink():
    p = subprocess.Popen([sys.executable, os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("smtp sink did not start: %r" % line)
    return p, dict(kv.split("=") for kv in line.split()[1:])


def messages(sink_http):
    with urllib.request.urlopen(sink_http + "/_mock/messages", timeout=10) as r:
        msgs = json.loads(r.read())
    msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
    out = []
    for m in msgs:
        msg = email.message_from_bytes(m["raw"].encode("utf-8"), policy=email.policy.default)
        out.append((m["recipient"], str(msg["Subject"])))
    return out


def reset(sink_http):
    req = urllib.request.Request(sink_http + "/_mock/reset", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def status(db, b):
    return db.row("SELECT status, sent_count, failed_count, total_recipients FROM broadcast.broadcasts"
                  " WHERE workspace_id = 'seg' AND broadcast_id = %s", b)


def run(r):
    run_send(r)
    run_kill(r)


def new_scheduler(c, old_pid):
    conn = c.connect()
    pid = DB(conn).one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'broadcast_engine scheduler'")
    if pid and pid != old_pid:
        return conn
    conn.close()
    return None


def run_kill(r):
    """SIGKILL of the scheduler mid-expansion of a segment: exactly once afterwards."""
    big = int(os.environ.get("BE_IT_SEGMENT_BIG", "30000"))
    c = Cluster(56201, conf={
        "broadcast_engine.sender_workers": "0",
        "broadcast_engine.chunk_size": "100",
        "broadcast_engine.scheduler_tick": "'60s'",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        db.q("""SELECT broadcast.create_workspace('k9', 'K9', 'UTC', '{"default_from_email": "news@k9.test"}')""")
        db.q("""SELECT broadcast.create_integration('k9', 'mail', 'smtp', '{"host": "127.0.0.1"}')""")
        db.q("SELECT broadcast.create_template('k9', 't', 'Hello', '<p>hi</p>')")
        db.q("SELECT broadcast.create_list('k9', 'news', 'News')")
        db.q("""INSERT INTO broadcast.contacts (workspace_id, email, properties)
                SELECT 'k9', 'k' || lpad(i::text, 6, '0') || '@x.test', jsonb_build_object('score', i %% 10)
                  FROM generate_series(1, %s) i""", big)
        db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
                SELECT 'k9', 'news', email FROM broadcast.contacts WHERE workspace_id = 'k9'""")
        db.q("""SELECT broadcast.create_segment('k9', 'high', 'High',
                '{"field": "properties.score", "op": "gte", "value": 3}')""")
        want = len([i for i in range(1, big + 1) if i % 10 >= 3])
        db.q("SELECT broadcast.create_broadcast('k9', 'k', 'K', '{}', 'mail', 't', segments => '{high}')")
        db.q("SELECT broadcast.schedule_broadcast('k9', 'k')")
        wait_for("expansion under way", lambda: db.one(
            "SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'k9'") > 500, 60)
        pid = db.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'broadcast_engine scheduler'")
        db.close()
        os.kill(pid, signal.SIGKILL)
        db = DB(wait_for("crash restart and a new scheduler", lambda: new_scheduler(c, pid), 90))
        mid = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'k9'")
        wait_for("expansion finished after SIGKILL", lambda: db.one(
            "SELECT phase FROM broadcast.tasks WHERE workspace_id = 'k9' AND broadcast_id = 'k'") == "drain", 180)
        total, enq = db.row("SELECT total_recipients, enqueued_count FROM broadcast.broadcasts"
                            " WHERE workspace_id = 'k9' AND broadcast_id = 'k'")
        rows, distinct, wrong = db.row("""SELECT count(*), count(DISTINCT q.email),
                count(*) FILTER (WHERE (c.properties->>'score')::int < 3)
                FROM broadcast.email_queue q JOIN broadcast.contacts c USING (workspace_id, email)
                WHERE q.workspace_id = 'k9' AND q.broadcast_id = 'k'""")
        r.check("segment expansion killed part way (%d of %d)" % (mid, want), 0 < mid < want, mid)
        r.check("after SIGKILL: queue rows = enqueued_count = total_recipients = %d, nobody twice or wrongly"
                % want, rows == distinct == enq == total == want and wrong == 0, (rows, distinct, enq, total, wrong))
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        print_state(c)
        raise
    finally:
        c.destroy()


def print_state(c):
    """What the scheduler and the task were doing, for a failure's report."""
    try:
        db = DB(c.connect())
        for row in db.q("SELECT workspace_id, broadcast_id, phase, status, attempts, run_at, lease_until,"
                        " last_error, now() FROM broadcast.tasks") or []:
            print("# task: %r" % (row,))
        for row in db.q("SELECT backend_type, state, wait_event_type, wait_event, left(query, 80)"
                        " FROM pg_stat_activity WHERE backend_type LIKE 'broadcast%%'") or []:
            print("# activity: %r" % (row,))
        db.close()
    except Exception as e:  # the report must not hide the failure
        print("# could not read the state: %s" % e)


def run_send(r):
    sink, sinkf = start_sink()
    sink_http = "http://127.0.0.1:%s" % sinkf["http"]
    c = Cluster(56200, conf={
        "broadcast_engine.sender_workers": "1",
        "broadcast_engine.chunk_size": "7",
        "broadcast_engine.drain_poll": "'200ms'",
        "broadcast_engine.allow_insecure_transport": "on",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        db.q("""SELECT broadcast.create_workspace('seg', 'Seg', 'UTC', '{"default_from_email": "news@seg.test",
                "unsubscribe_base_url": "https://seg.test/u"}')""")
        db.q("SELECT broadcast.create_integration('seg', 'mail', 'smtp', %s)",
             '{"host": "127.0.0.1", "port": %s, "tls": "none"}' % sinkf["port"])
        db.q("SELECT broadcast.create_template('seg', 't', 'Hello {{ contact.first_name }}', '<p>hi</p>')")
        db.q("SELECT broadcast.create_template('seg', 'again', 'Reminder', '<p>again</p>')")
        db.q("SELECT broadcast.create_list('seg', 'news', 'News'), broadcast.create_list('seg', 'block', 'Block')")
        # contacts i = 1..N: plan pro when i % 3 = 0; active on news except i % 10 = 1 (pending);
        # i % 20 = 3 on the exclusion list; i % 25 = 6 suppressed
        db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)
                SELECT 'seg', 'c' || lpad(i::text, 4, '0') || '@x.test', 'Name' || i,
                       jsonb_build_object('plan', CASE WHEN i %% 3 = 0 THEN 'pro' ELSE 'free' END, 'n', i)
                  FROM generate_series(1, %s) i""", N)
        db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email, status)
                SELECT 'seg', 'news', 'c' || lpad(i::text, 4, '0') || '@x.test',
                       CASE WHEN i %% 10 = 1 THEN 'pending' ELSE 'active' END
                  FROM generate_series(1, %s) i""", N)
        db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
                SELECT 'seg', 'block', 'c' || lpad(i::text, 4, '0') || '@x.test'
                  FROM generate_series(1, %s) i WHERE i %% 20 = 3""", N)
        db.q("""SELECT broadcast.suppress('seg', ARRAY(SELECT 'c' || lpad(i::text, 4, '0') || '@x.test'
                  FROM generate_series(1, %s) i WHERE i %% 25 = 6))""", N)
        addr = lambda i: "c%04d@x.test" % i
        expected = {addr(i) for i in range(1, N + 1)
                    if i % 3 == 0 and i % 10 != 1 and i % 20 != 3 and i % 25 != 6}

        db.q("""SELECT broadcast.create_segment('seg', 'pros', 'Pro plan',
                '{"field": "properties.plan", "op": "eq", "value": "pro"}')""")
        preview = db.row("SELECT matching, reachable FROM broadcast.preview_segment('seg', segment_id => 'pros')")
        reach = len([i for i in range(3, N + 1, 3) if i % 10 != 1 and i % 25 != 6])
        r.check("preview counts the segment (%s)" % (preview,), preview == (N // 3, reach), (preview, reach))
        db.q("""SELECT broadcast.create_broadcast('seg', 'b1', 'To pros', '{}', 'mail', 't',
                exclude_lists => '{block}', segments => '{pros}')""")
        db.q("SELECT broadcast.schedule_broadcast('seg', 'b1')")
        wait_for("segment broadcast completed", lambda: status(db, "b1")[0] == "completed", 120)
        st = status(db, "b1")
        got = messages(sink_http)
        rcpts = [m[0] for m in got]
        r.check("segment broadcast: %d messages, each matching contact exactly once" % len(rcpts),
                sorted(rcpts) == sorted(expected), (len(rcpts), len(expected), sorted(set(rcpts) ^ expected)[:5]))
        r.check("segment broadcast: counters (%s)" % (st,), st[1:] == (len(expected), 0, len(expected)), st)
        r.check("segment broadcast: rendered with each contact's data",
                all(s == "Hello Name%d" % int(a[1:5]) for a, s in got), got[:3])

        # opens for every second recipient (as a delivery event would record them)
        opened = {a for a in expected if int(a[1:5]) % 2 == 0}
        db.q("UPDATE broadcast.message_history SET opened_at = now() WHERE workspace_id = 'seg'"
             " AND broadcast_id = 'b1' AND email = ANY (%s)", sorted(opened))
        reset(sink_http)
        db.q("SELECT broadcast.create_followup('seg', 'b1', 'f1', 'again', subject => 'Did you miss it, {{ contact.first_name }}?')")
        db.q("SELECT broadcast.schedule_broadcast('seg', 'f1')")
        wait_for("follow-up completed", lambda: status(db, "f1")[0] == "completed", 120)
        got = messages(sink_http)
        rcpts = [m[0] for m in got]
        want = expected - opened
        r.check("follow-up: %d messages, each non-opener exactly once, no opener" % len(rcpts),
                sorted(rcpts) == sorted(want) and len(want) > 0, (len(rcpts), len(want)))
        r.check("follow-up: the new subject", all(s == "Did you miss it, Name%d?" % int(a[1:5]) for a, s in got), got[:3])

        # a test send: at once, the sample contact's data, outside the original's numbers
        reset(sink_http)
        before = status(db, "b1")
        stats_before = db.q("SELECT * FROM broadcast.broadcast_stats('seg', 'b1')")
        db.q("SELECT broadcast.send_test('seg', 'b1', ARRAY['qa@team.test', 'boss@team.test'],"
             " sample_email => 'c0009@x.test')")
        wait_for("test messages", lambda: len(messages(sink_http)) >= 2, 60)
        got = sorted(messages(sink_http))
        r.check("test send: both addresses, rendered with the sample's data (%s)" % got,
                got == [("boss@team.test", "Hello Name9"), ("qa@team.test", "Hello Name9")], got)
        hist = db.q("SELECT h.email, b.test_of FROM broadcast.message_history h JOIN broadcast.broadcasts b"
                    " USING (workspace_id, broadcast_id) WHERE h.workspace_id = 'seg' AND b.test_of IS NOT NULL"
                    " ORDER BY 1")
        r.check("test send: history marked as a test of b1", hist == [("boss@team.test", "b1"), ("qa@team.test", "b1")], hist)
        r.check("test send: b1's counters and statistics unchanged",
                status(db, "b1") == before and db.q("SELECT * FROM broadcast.broadcast_stats('seg', 'b1')") == stats_before,
                (status(db, "b1"), before))
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        raise
    finally:
        c.destroy()
        sink.kill()
