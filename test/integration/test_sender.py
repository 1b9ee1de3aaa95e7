"""The sender workers against local servers: an SMTP sink and the SendGrid mock.

Covers: complete, personalised, valid MIME delivery with one-click
unsubscribe headers and history/counters (SMTP and SendGrid); each fault
(429 with Retry-After, 5xx then success, a permanent 400, dead letters and
retry_dead_letters, the circuit breaker opening and recovering); a sender
killed with SIGKILL mid-batch and an immediate shutdown mid-broadcast
(everyone gets the message, duplicates bounded by what was in flight); the
rate limit holding; the claim cycle's cost not growing with idle workspaces.
"""
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
PY = sys.executable


def start_server(args):
    p = subprocess.Popen([PY] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("server did not start: %r" % line)
    fields = dict(kv.split("=") for kv in line.split()[1:])
    return p, fields


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def setup_ws(db, ws, n, integration_sql, prefix="r"):
    db.q("""SELECT broadcast.create_workspace(%s, %s, 'UTC', '{"sending_domain": "news.example.test",
            "unsubscribe_base_url": "https://example.test/u", "default_from_email": "news@example.test",
            "default_from_name": "Example News"}')""", ws, ws)
    db.q("SELECT broadcast.create_list(%s, 'l', 'Readers')", ws)
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)
            SELECT %s, %s || i || '@example.com', 'Name' || i, jsonb_build_object('n', i)
              FROM generate_series(1, %s) i""", ws, prefix, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'l', %s || i || '@example.com' FROM generate_series(1, %s) i""", ws, prefix, n)
    db.q("""SELECT broadcast.create_template(%s, 't', 'Hello {{ contact.first_name }}',
            '<p>Hi {{ contact.first_name | escape }} #{{ contact.n }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')""", ws)
    db.q(integration_sql)


def send(db, ws, integ, bid="b"):
    db.q("SELECT broadcast.create_broadcast(%s, %s, %s, '{l}', %s, 't')", ws, bid, bid, integ)
    db.q("SELECT broadcast.schedule_broadcast(%s, %s)", ws, bid)


def status(db, ws, bid="b"):
    return db.row("SELECT status, sent_count, failed_count, total_recipients FROM broadcast.broadcasts"
                  " WHERE workspace_id = %s AND broadcast_id = %s", ws, bid)


def run(r):
    if os.environ.get("BE_IT_ONLY") != "tls":
        run_main(r)
    run_tls(r)


def run_tls(r):
    """SMTP with STARTTLS and AUTH, the server's certificate checked against ca_file."""
    import shutil
    import tempfile
    certdir = tempfile.mkdtemp(prefix="be-tls-")
    subprocess.run(["sh", os.path.join(MOCKS, "make_cert.sh"), certdir], check=True, capture_output=True)
    os.chmod(certdir, 0o755)
    for f in os.listdir(certdir):
        os.chmod(os.path.join(certdir, f), 0o644)
    cert = os.path.join(certdir, "cert.pem")
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0",
                                "--tls-cert", cert, "--tls-key", os.path.join(certdir, "key.pem"),
                                "--auth", "mailer:s3cret", "--hostname", "localhost"])
    c = Cluster(54332, conf={"broadcast_engine.sender_workers": "1", "broadcast_engine.retry_base": "'200ms'"})
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        cfg = ('{"host": "localhost", "port": %s, "tls": "starttls", "username": "mailer", "ehlo_name": "tls.example.test",'
               ' "ca_file": "%s"}' % (sinkf["port"], cert))
        setup_ws(db, "tls", 50, "SELECT broadcast.create_integration('tls', 'mail', 'smtp', '%s', 's3cret')" % cfg, prefix="t")
        send(db, "tls", "mail")
        wait_for("TLS broadcast completed", lambda: status(db, "tls")[0] == "completed", 60)
        msgs = http("GET", "http://127.0.0.1:%s/_mock/messages" % sinkf["http"])
        msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
        ok = [m for m in msgs if m.get("tls") and m.get("tls_mode") == "starttls" and m.get("auth")
              and m.get("auth_user") == "mailer" and m.get("ehlo") == "tls.example.test"]
        r.check("smtp: STARTTLS with a verified certificate, AUTH and our EHLO name on all %d messages" % len(ok),
                len(ok) == 50 and status(db, "tls")[1:3] == (50, 0), (len(msgs), status(db, "tls"), msgs[:1]))
        # a wrong password is a permanent failure that names the integration
        db.q("SELECT broadcast.create_integration('tls', 'badlogin', 'smtp', %s, 'wrong')", cfg)
        db.q("SELECT broadcast.create_broadcast('tls', 'b2', 'b2', '{l}', 'badlogin', 't')")
        db.q("SELECT broadcast.schedule_broadcast('tls', 'b2')")
        wait_for("auth failures dead-lettered", lambda: db.one(
            "SELECT count(*) FROM broadcast.dead_letters WHERE workspace_id = 'tls' AND broadcast_id = 'b2'") == 50, 60)
        err = db.one("SELECT min(last_error) FROM broadcast.dead_letters WHERE workspace_id = 'tls'")
        r.check("smtp: a refused login fails at once, naming the integration (%s)" % err,
                "integration \"badlogin\"" in err and "authentication failed" in err, err)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        raise
    finally:
        c.destroy()
        sink.kill()
        shutil.rmtree(certdir, ignore_errors=True)


def run_main(r):
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    mock, mockf = start_server([os.path.join(MOCKS, "mock_provider.py"), "--port", "0"])
    smtp_port, sink_http = int(sinkf["port"]), "http://127.0.0.1:%s" % sinkf["http"]
    api = "http://127.0.0.1:%s" % mockf["port"]
    http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
    c = Cluster(54331, conf={
        "broadcast_engine.sender_workers": "2",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.retry_base": "'200ms'",
        "broadcast_engine.breaker_threshold": "5",
        "broadcast_engine.breaker_cooldown": "'2s'",
        "broadcast_engine.drain_poll": "'500ms'",
        "broadcast_engine.request_timeout": "'2s'",
        "broadcast_engine.sender_batch_size": "100",
        "broadcast_engine.max_connections": "16",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("two senders", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                               " WHERE backend_type LIKE 'broadcast_engine sender%%'") == 2, 30)
        smtp_cfg = '{"host": "127.0.0.1", "port": %d, "tls": "none", "ehlo_name": "sender.example.test"}' % smtp_port

        # --- a complete SMTP broadcast, checked message by message
        n = 2000
        setup_ws(db, "smtp", n, "SELECT broadcast.create_integration('smtp', 'mail', 'smtp', '%s')" % smtp_cfg)
        send(db, "smtp", "mail")
        wait_for("smtp broadcast completed", lambda: status(db, "smtp")[0] == "completed", 120)
        st = status(db, "smtp")
        r.check("smtp: counters right (%s)" % (st,), st[1:] == (n, 0, n), st)
        msgs = http("GET", sink_http + "/_mock/messages")
        msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
        rcpts = [m["recipient"] for m in msgs]
        r.check("smtp: every recipient got exactly one message (%d messages, %d distinct)" % (len(rcpts), len(set(rcpts))),
                len(rcpts) == n and len(set(rcpts)) == n)
        hist = dict(db.q("SELECT email, message_id::text FROM broadcast.message_history WHERE workspace_id = 'smtp'"
                         " AND status = 'sent' AND provider_message_id IS NOT NULL"))
        r.check("smtp: a history row with the server's queue id for each", len(hist) == n, len(hist))
        bad = []
        for m in msgs[:n]:
            rcpt = m["recipient"]
            msg = email.message_from_bytes(m["raw"].encode("utf-8"), policy=email.policy.strict)
            i = rcpt[1:rcpt.index("@")]
            parts = [p.get_content_type() for p in msg.iter_parts()] if msg.is_multipart() else []
            html = msg.get_body(("html",)).get_content()
            problems = []
            if msg.defects:
                problems.append("defects %r" % msg.defects)
            if str(msg["Subject"]) != "Hello Name%s" % i:
                problems.append("subject %r" % str(msg["Subject"]))
            if parts != ["text/plain", "text/html"]:
                problems.append("parts %r" % parts)
            if ("#%s<" % i) not in html:
                problems.append("not personalised")
            if not str(msg["List-Unsubscribe"]).startswith("<https://example.test/u/"):
                problems.append("List-Unsubscribe %r" % msg["List-Unsubscribe"])
            if str(msg["List-Unsubscribe-Post"]) != "List-Unsubscribe=One-Click":
                problems.append("no one-click header")
            if str(msg["Message-ID"]) != "<%s@news.example.test>" % hist.get(rcpt):
                problems.append("Message-ID %r vs %r" % (str(msg["Message-ID"]), hist.get(rcpt)))
            if problems:
                bad.append((rcpt, problems))
        r.check("smtp: every message is strict-valid MIME, personalised, with one-click unsubscribe and our Message-ID",
                not bad, bad[:3])
        stats = http("GET", sink_http + "/_mock/stats")
        r.check("smtp: sessions are reused (%s connections for %d messages)" % (stats.get("connections"), n),
                0 < stats.get("connections", 0) < n / 5, stats.get("connections"))

        # --- SendGrid
        n2 = 1500
        setup_ws(db, "sg", n2, "SELECT broadcast.create_integration('sg', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}', 'SG.good')" % api)
        send(db, "sg", "sg")
        wait_for("sendgrid broadcast completed", lambda: status(db, "sg")[0] == "completed", 120)
        st = status(db, "sg")
        r.check("sendgrid: counters right (%s)" % (st,), st[1:] == (n2, 0, n2), st)
        got = http("GET", api + "/_mock/messages?provider=sendgrid")
        got = got.get("messages", got) if isinstance(got, dict) else got
        ids = dict(db.q("SELECT message_id::text, provider_message_id FROM broadcast.message_history WHERE workspace_id = 'sg'"))
        by_rcpt = {}
        for m in got:
            by_rcpt.setdefault(m.get("recipient") or m.get("to"), []).append(m)
        r.check("sendgrid: each recipient once (%d)" % len(by_rcpt), len(by_rcpt) == n2 and len(got) == n2)
        mism = [m for m in got if ids.get(m.get("be_message_id")) != m.get("provider_message_id")]
        r.check("sendgrid: custom_args carry our message id and history keeps X-Message-Id", not mism, mism[:2])

        # --- faults: 429 with Retry-After, 500s, a permanent 400 for one recipient
        http("POST", api + "/_mock/reset")
        http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
        http("POST", api + "/_mock/faults", [
            {"provider": "sendgrid", "mode": "status", "status": 429, "retry_after": 1, "count": 3},
            {"provider": "sendgrid", "mode": "status", "status": 500, "count": 4},
            {"provider": "sendgrid", "mode": "status", "status": 400, "match_recipient": "f7@example.com", "count": -1}])
        setup_ws(db, "flt", 300, "SELECT broadcast.create_integration('flt', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}', 'SG.good')" % api, prefix="f")
        send(db, "flt", "sg")
        wait_for("faulty broadcast drained", lambda: db.one(
            "SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'flt' AND status <> 'dead'") == 0
            and db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'flt'") == 300, 120)
        sent, failed = db.row("SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed')"
                              " FROM broadcast.message_history WHERE workspace_id = 'flt'")
        stats = http("GET", api + "/_mock/stats")["providers"]["sendgrid"]["status"]
        r.check("faults: 429s and 500s were retried until sent (%d sent; provider answered %s)" % (sent, stats),
                sent == 299 and stats.get("429", 0) == 3 and stats.get("500", 0) == 4, (sent, stats))
        retried = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'flt' AND attempts > 1")
        r.check("faults: the retried messages record their attempts (%d)" % retried, retried >= 7, retried)
        dead = db.q("SELECT email, attempts, last_error FROM broadcast.dead_letters WHERE workspace_id = 'flt'")
        r.check("faults: a permanent 400 fails at once into a dead letter with a failed history row",
                failed == 1 and len(dead) == 1 and dead[0][0] == "f7@example.com" and dead[0][1] == 1
                and "HTTP 400" in dead[0][2], (failed, dead))
        wait_for("broadcast with a dead letter completes", lambda: status(db, "flt")[0] == "completed", 30)
        r.check("faults: counters count the failure", status(db, "flt")[1:3] == (299, 1), status(db, "flt"))
        http("POST", api + "/_mock/faults", [])
        requeued = db.one("SELECT broadcast.retry_dead_letters('flt', 'b')")
        wait_for("dead letter re-sent", lambda: db.one(
            "SELECT status FROM broadcast.message_history WHERE workspace_id = 'flt' AND email = 'f7@example.com'") == "sent", 30)
        r.check("faults: retry_dead_letters re-queues and the message goes out (%d)" % requeued,
                requeued == 1 and status(db, "flt")[1:3] == (300, 0), status(db, "flt"))

        # --- circuit breaker: a provider that keeps failing is left alone, then probed
        http("POST", api + "/_mock/reset")
        http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
        http("POST", api + "/_mock/faults", [{"provider": "sendgrid", "mode": "status", "status": 503, "count": -1}])
        setup_ws(db, "brk", 200, "SELECT broadcast.create_integration('brk', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}', 'SG.good')" % api, prefix="k")
        send(db, "brk", "sg")
        wait_for("breaker opened", lambda: http("GET", api + "/_mock/stats")["providers"].get("sendgrid", {}).get("requests", 0) >= 5, 30)
        time.sleep(1.0)  # negative check: while open (2 s) nothing more goes out
        a = http("GET", api + "/_mock/stats")["providers"]["sendgrid"]["requests"]
        time.sleep(0.8)
        b = http("GET", api + "/_mock/stats")["providers"]["sendgrid"]["requests"]
        attempts = db.one("SELECT max(attempts) FROM broadcast.email_queue WHERE workspace_id = 'brk'")
        # each of the 2 senders stops after 5 failures, with at most 16 transfers already in flight
        r.check("breaker: opens after consecutive failures, no hot loop, no attempts burned (%d then %d requests, max attempts %s)"
                % (a, b, attempts), b - a <= 1 and a <= 2 * (5 + 16) and attempts <= 2, (a, b, attempts))
        http("POST", api + "/_mock/faults", [])
        wait_for("recovery after the breaker", lambda: status(db, "brk")[0] == "completed", 60)
        r.check("breaker: a probe succeeds and everything goes out", status(db, "brk")[1:3] == (200, 0), status(db, "brk"))

        # --- a sender killed with SIGKILL mid-batch
        http("POST", api + "/_mock/reset")
        http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
        http("POST", api + "/_mock/faults", [{"provider": "sendgrid", "mode": "slow", "delay_ms": 150, "count": -1}])
        setup_ws(db, "kill", 1500, "SELECT broadcast.create_integration('kill', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}', 'SG.good')" % api, prefix="x")
        send(db, "kill", "sg")
        wait_for("sending under way", lambda: (status(db, "kill")[1] or 0) > 100, 60)
        pids = [x[0] for x in db.q("SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'broadcast_engine sender%%'")]
        db.close()
        os.kill(pids[0], signal.SIGKILL)

        def restarted():
            """A connection once the crash restart is over: the killed sender gone, two new ones up."""
            conn = c.connect()
            d = DB(conn)
            if d.one("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pids[0]) == 0 and d.one(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'broadcast_engine sender%%'"
                    " AND pid <> ALL (%s)", pids) == 2:
                return conn
            conn.close()
            return None
        db = DB(wait_for("crash restart with new senders", restarted, 60))
        http("POST", api + "/_mock/faults", [])
        wait_for("killed broadcast completed", lambda: status(db, "kill")[0] == "completed", 120)
        got = http("GET", api + "/_mock/messages?provider=sendgrid")
        got = got.get("messages", got) if isinstance(got, dict) else got
        rc = [m.get("recipient") for m in got]
        dups = len(rc) - len(set(rc))
        r.check("SIGKILL: every recipient got the message (%d distinct of 1500)" % len(set(rc)), len(set(rc)) == 1500)
        r.check("SIGKILL: duplicates (%d) no more than what was in flight (2 senders x 100)" % dups, dups <= 200, dups)
        r.check("SIGKILL: history has one sent row per recipient",
                db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'kill' AND status = 'sent'") == 1500)

        # --- rate limit: 100/s holds over a 20-second send
        http("POST", api + "/_mock/reset")
        http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
        setup_ws(db, "rl", 2000, "SELECT broadcast.create_integration('rl', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}', 'SG.good', 100)" % api, prefix="q")
        send(db, "rl", "sg")
        wait_for("rate-limited broadcast completed", lambda: status(db, "rl")[0] == "completed", 60)
        span = db.one("SELECT extract(epoch FROM max(sent_at) - min(sent_at)) FROM broadcast.message_history WHERE workspace_id = 'rl'")
        rate = 1999 / float(span)
        r.check("rate limit: 2000 messages at a 100/s limit went at %.1f/s over %.0f s (within 10%%)" % (rate, span),
                rate <= 110 and span >= 18, (rate, span))

        # --- operators see the workers and the limiter (counters restart with the
        # workers: the SIGKILL above restarted them, so at least the 2,000 since)
        workers = db.q("SELECT kind, count(*), sum(messages) FROM broadcast.workers GROUP BY 1 ORDER BY 1")
        r.check("workers view: one scheduler, two senders that sent the mail (%s)" % (workers,),
                [w[:2] for w in workers] == [("scheduler", 1), ("sender", 2)] and workers[1][2] >= 2000, workers)
        rl = db.row("SELECT rate_per_second, breaker, granted FROM broadcast.rate_limits()"
                    " WHERE workspace_id = 'rl' AND integration_id = 'sg'")
        r.check("rate_limits: the integration's bucket, its rate and what it granted (%s)" % (rl,),
                rl is not None and rl[0] == 100 and rl[1] == "closed" and rl[2] >= 2000, rl)

        # --- the claim cycle's cost does not grow with idle workspaces
        def pairs_cost():
            plan = db.one("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM broadcast.active_pairs")
            p = plan[0]["Plan"]
            return p["Shared Hit Blocks"] + p.get("Shared Read Blocks", 0)
        db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id, next_attempt_at)
                SELECT 'rl', 'b', 'z' || i || '@example.com', 'sg', 'l', gen_random_uuid(), now() + interval '1 day'
                  FROM generate_series(1, 10) i""")
        db.q("VACUUM broadcast.email_queue")
        before = pairs_cost()
        db.q("SELECT broadcast.create_workspace('idle' || i, 'Idle') FROM generate_series(1, 10000) i")
        db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id, status)
                SELECT 'idle' || i, 'old', 'd@example.com', 'sg', 'l', gen_random_uuid(), 'dead' FROM generate_series(1, 10000) i""")
        db.q("VACUUM ANALYZE broadcast.email_queue")
        after = pairs_cost()
        r.check("claim cycle: finding active pairs reads %d blocks with 10,000 idle workspaces, %d without" % (after, before),
                after <= before + 2, (before, after))
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
        raise
    finally:
        c.destroy()
        sink.kill()
        mock.kill()
