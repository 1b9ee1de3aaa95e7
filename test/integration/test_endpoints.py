"""Integration endpoints are no SSRF, and queue rows follow their broadcast.

One cluster whose senders start with broadcast_engine.allow_private_endpoints
off (it is on in every other suite):

- the API refuses loopback, private, link-local and internal targets with a
  clear error;
- targets created while a superuser session allowed them (the way a name
  that resolves to 127.0.0.1 would get through) are refused at connect time:
  the internal server sees no request, and what the tenant reads names the
  reason and holds nothing of the server's answer;
- with the setting on (ALTER SYSTEM + reload) the same local servers work,
  and a provider's answer reaches the tenant only as a short excerpt without
  control characters;
- update_broadcast(integration_id => ...) on a broadcast paused mid-send:
  every remaining message goes out through the new integration, none
  through the old one (BE_IT_ONLY=switch runs this part alone).
"""
import http.server as httpserver
import json
import os
import re
import sys
import threading
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
PY = sys.executable

SECRET = "TOP-SECRET-INTERNAL-TOKEN"
TAIL = "SECRET-TAIL-BEYOND-THE-EXCERPT"
# an internal service's answer: control characters, then far more than an excerpt
ANSWER = ("bad request\r\n\x1b[31m" + SECRET + "\x00\x07 " + "A" * 300 + TAIL).encode()


def start_server(args):
    import subprocess
    p = subprocess.Popen([PY] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("server did not start: %r" % line)
    return p, dict(kv.split("=") for kv in line.split()[1:])


def http(method, url):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def sink_rcpts(sinkf):
    msgs = http("GET", "http://127.0.0.1:%s/_mock/messages" % sinkf["http"])
    msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
    return [m["recipient"] for m in msgs]


class Internal(httpserver.BaseHTTPRequestHandler):
    """A service on the loopback address that must stay unreachable."""
    requests = 0

    def do_POST(self):
        Internal.requests += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *a):
        pass


def setup_ws(db, ws, n):
    db.q("""SELECT broadcast.create_workspace(%s, %s, 'UTC', '{"default_from_email": "news@example.test"}')""", ws, ws)
    db.q("SELECT broadcast.create_list(%s, 'l', 'L')", ws)
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email)
            SELECT %s, %s || i || '@example.com' FROM generate_series(1, %s) i""", ws, ws, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'l', %s || i || '@example.com' FROM generate_series(1, %s) i""", ws, ws, n)
    db.q("SELECT broadcast.create_template(%s, 't', 'Hello', '<p>Hi</p>')", ws)


def send(db, ws, bid, integ):
    db.q("SELECT broadcast.create_broadcast(%s, %s, %s, '{l}', %s, 't')", ws, bid, bid, integ)
    db.q("SELECT broadcast.schedule_broadcast(%s, %s)", ws, bid)


def status(db, ws, bid):
    return db.row("SELECT status, sent_count, failed_count FROM broadcast.broadcasts"
                  " WHERE workspace_id = %s AND broadcast_id = %s", ws, bid)


def dead(db, ws, bid):
    return db.q("SELECT email, last_error FROM broadcast.dead_letters WHERE workspace_id = %s AND broadcast_id = %s",
                ws, bid)


def api_error(db, sql, *args):
    try:
        db.q(sql, *args)
    except Exception as e:  # psycopg2.Error (the connection is in autocommit)
        return getattr(e, "pgcode", None), str(e).splitlines()[0]
    return None, "no error"


def run(r):
    only = os.environ.get("BE_IT_ONLY")
    internal = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Internal)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    sink_a, sink_af = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    sink_b, sink_bf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    c = Cluster(55500, conf={
        "broadcast_engine.sender_workers": "1",
        "broadcast_engine.allow_insecure_transport": "on",
        # BE_IT_ONLY=switch runs the integration switch alone, targets allowed from the start
        "broadcast_engine.allow_private_endpoints": "on" if only == "switch" else "off",
        "broadcast_engine.retry_base": "'200ms'",
        "broadcast_engine.max_attempts": "2",
        "broadcast_engine.drain_poll": "'500ms'",
        "broadcast_engine.request_timeout": "'2s'",
        "broadcast_engine.sender_batch_size": "10",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("a sender", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                            " WHERE backend_type LIKE 'broadcast_engine sender%%'") == 1, 30)
        if only != "switch":
            run_targets(r, db, internal, sink_af)
        run_switch(r, db, sink_af, sink_bf)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        raise
    finally:
        c.destroy()
        sink_a.kill()
        sink_b.kill()
        internal.shutdown()


def run_targets(r, db, internal, sink_af):
    internal_url = "http://127.0.0.1:%d" % internal.server_address[1]
    setup_ws(db, "ep", 5)

    # --- the API refuses what is not public
    refused = []
    for endpoint, why in [("http://127.0.0.1:%d" % internal.server_address[1], "loopback address"),
                          ("https://10.0.0.8/v3", "private address"),
                          ("https://[::1]:8443", "loopback address"),
                          ("https://localhost", "loopback name"),
                          ("http://169.254.169.254/latest/meta-data", "link-local address"),
                          ("https://[::ffff:192.168.0.1]", "private address"),
                          ("https://2130706433", "loopback address")]:
        code, msg = api_error(db, "SELECT broadcast.create_integration('ep', 'x', 'sendgrid', %s, 'k')",
                              json.dumps({"endpoint": endpoint}))
        if code != "22023" or why not in msg:
            refused.append((endpoint, code, msg))
    for host in ["127.0.0.1", "localhost", "::1", "192.168.1.20"]:
        code, msg = api_error(db, "SELECT broadcast.create_integration('ep', 'x', 'smtp', %s)",
                              json.dumps({"host": host, "tls": "none"}))
        if code != "22023" or "SMTP host" not in msg:
            refused.append((host, code, msg))
    r.check("api: loopback, private, link-local and internal targets are refused with a clear error",
            not refused and db.one("SELECT count(*) FROM broadcast.integrations WHERE workspace_id = 'ep'") == 0,
            refused)

    # --- created while a superuser session allowed them; the senders do not
    db.q("SET broadcast_engine.allow_private_endpoints = on")
    db.q("SELECT broadcast.create_integration('ep', 'internal', 'sendgrid', %s, 'k')",
         json.dumps({"endpoint": internal_url}))
    # a name that resolves to the loopback address, and a literal one
    db.q("SELECT broadcast.create_integration('ep', 'byname', 'smtp', %s)",
         json.dumps({"host": "localhost", "port": int(sink_af["port"]), "tls": "none"}))
    db.q("RESET broadcast_engine.allow_private_endpoints")
    send(db, "ep", "http", "internal")
    send(db, "ep", "name", "byname")
    wait_for("the internal targets' messages dead-lettered",
             lambda: len(dead(db, "ep", "http")) == 5 and len(dead(db, "ep", "name")) == 5, 60)
    errs = [e for _, e in dead(db, "ep", "http") + dead(db, "ep", "name")]
    good = [e for e in errs if re.search(r'was not connected: (127\.0\.0\.1|::1) is a loopback address, which needs '
                                         r'broadcast_engine\.allow_private_endpoints', e)]
    r.check("sender: connections to loopback are refused at connect time, literal or by name (%s)" % errs[:1],
            len(good) == 10 and Internal.requests == 0 and sink_rcpts(sink_af) == [],
            (errs[:2], Internal.requests))
    r.check("sender: nothing of the internal server's answer reaches the tenant",
            not any(SECRET in (e or "") or "bad request" in (e or "") for e in errs), errs[:2])

    # --- allowed by a superuser: the local servers work as before
    db.q("ALTER SYSTEM SET broadcast_engine.allow_private_endpoints = on")
    db.q("SELECT pg_reload_conf()")

    def retried(bid):
        # until the sender has read its new configuration, a retry fails as before
        rows = dead(db, "ep", bid)
        if rows and all("was not connected" in e for _, e in rows):
            db.q("SELECT broadcast.retry_dead_letters('ep', %s)", bid)
        return status(db, "ep", bid)[0] == "completed" and db.one(
            "SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'ep' AND broadcast_id = %s"
            " AND status <> 'dead'", bid) == 0
    wait_for("the SMTP broadcast retried through the sink", lambda: retried("name") and len(sink_rcpts(sink_af)) == 5, 60)
    r.check("allowed: the SMTP sink on loopback gets every message",
            sorted(sink_rcpts(sink_af)) == sorted("ep%d@example.com" % i for i in range(1, 6)), sink_rcpts(sink_af))
    wait_for("the internal server answered", lambda: retried("http") and Internal.requests >= 5
             and all("HTTP 400" in e for _, e in dead(db, "ep", "http")), 60)
    errs = [e for _, e in dead(db, "ep", "http")]
    e0 = errs[0]
    excerpt = e0[e0.index("(HTTP 400): ") + 12:]
    r.check("allowed: the provider's answer is kept to a short excerpt without control characters (%r)" % e0,
            len(errs) == 5 and excerpt.startswith("bad request") and TAIL not in e0
            and len(excerpt.encode()) <= 203 and not re.search(r"[\x00-\x1f\x7f]", e0), errs[:1])


def run_switch(r, db, sink_af, sink_bf):
    # --- a broadcast paused mid-send moves to another integration
    setup_ws(db, "sw", 120)
    db.q("SELECT broadcast.create_integration('sw', 'a', 'smtp', %s, rate_per_second => 20)",
         json.dumps({"host": "127.0.0.1", "port": int(sink_af["port"]), "tls": "none"}))
    db.q("SELECT broadcast.create_integration('sw', 'b', 'smtp', %s)",
         json.dumps({"host": "127.0.0.1", "port": int(sink_bf["port"]), "tls": "none"}))
    http("POST", "http://127.0.0.1:%s/_mock/reset" % sink_af["http"])
    send(db, "sw", "big", "a")
    wait_for("some of it sent through a", lambda: status(db, "sw", "big")[1] >= 20, 60)
    db.q("SELECT broadcast.pause_broadcast('sw', 'big')")
    wait_for("nothing in flight", lambda: db.one(
        "SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'sw' AND lease_until > now()") == 0, 30)
    before = set(sink_rcpts(sink_af))
    db.q("SELECT broadcast.update_broadcast('sw', 'big', integration_id => 'b')")
    db.q("SELECT broadcast.resume_broadcast('sw', 'big')")
    wait_for("the broadcast completed", lambda: status(db, "sw", "big")[0] == "completed", 90)
    via_a = sink_rcpts(sink_af)
    via_b = sink_rcpts(sink_bf)
    everyone = set("sw%d@example.com" % i for i in range(1, 121))
    r.check("switch: after the change nothing went through the old integration (%d before, %d after)"
            % (len(before), len(via_a)), set(via_a) == before and len(via_a) == len(before), len(via_a))
    r.check("switch: every remaining message reached the new one, each recipient once (%d + %d)"
            % (len(via_a), len(via_b)),
            len(via_b) > 0 and sorted(via_a + via_b) == sorted(everyone)
            and status(db, "sw", "big")[1:] == (120, 0), (len(via_a), len(via_b), status(db, "sw", "big")))
