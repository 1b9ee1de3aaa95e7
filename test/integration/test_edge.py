"""The HTTP edge (src/edge/): every status and error over real sockets.

A cluster with broadcast_engine.http_listen on a free loopback port sends a
broadcast through the SMTP sink with unsubscribe links pointing at the
edge.  Then: one-click POST (RFC 8058: 2xx, no cookie, no redirect) and the
form POST unsubscribe; GET shows the page and changes nothing; tampered and
unknown tokens get a 4xx page; the workspace's page texts show, escaped;
Mailgun webhooks signed right (2xx, event applied) and wrong (4xx), unknown
integration, bad JSON, oversized bodies (413, with and without a length);
404 and 405 with Allow; malformed request lines (400, the worker lives on);
a slowloris client cut at the request timeout while others are served; more
connections than the limit; /metrics through promtool with a workspace's
queue depth; SIGTERM of the edge (restarted, serves again); and a real
headless Chromium clicking the page's button, driven over the DevTools
protocol with a minimal WebSocket client.
"""
import base64
import email
import email.policy
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
TIMEOUT_S = 3          # broadcast_engine.http_request_timeout in this suite
MAX_CONN = 8           # broadcast_engine.http_max_connections
MAX_BODY = 64 * 1024   # broadcast_engine.http_max_body
MG_KEY = "key-edge-test-mailgun-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(args):
    p = subprocess.Popen([sys.executable] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("server did not start: %r" % line)
    return p, dict(kv.split("=") for kv in line.split()[1:])


class Edge:
    def __init__(self, port):
        self.port = port

    def req(self, method, path, body=None, headers=None):
        """One request on a fresh connection: (status, headers dict lower-case, body text)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read().decode("utf-8", "replace")
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def raw(self, data, timeout=5):
        """Sends bytes, returns all the server answers until it closes or goes quiet."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def up(self):
        try:
            return self.req("GET", "/metrics")[0] == 200
        except OSError:
            return False


def edge_pid(db):
    return db.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'broadcast_engine edge'")


def member_status(db, email_addr):
    return db.one("SELECT status FROM broadcast.list_members WHERE workspace_id = 'ed' AND list_id = 'l'"
                  " AND email = %s", email_addr)


def mailgun_body(mid, key=MG_KEY, event="opened"):
    ts = str(int(time.time()))
    token = "tok-%s" % mid
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": ts, "token": token, "signature": sig},
                       "event-data": {"event": event, "timestamp": time.time(), "recipient": "r1@example.com",
                                      "user-variables": {"message_id": mid}}})


def run(r):
    port = free_port()
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    c = Cluster(55700, conf={
        "broadcast_engine.http_listen": "'127.0.0.1:%d'" % port,
        "broadcast_engine.http_request_timeout": "'%ds'" % TIMEOUT_S,
        "broadcast_engine.http_max_connections": str(MAX_CONN),
        "broadcast_engine.http_max_body": "'%dkB'" % (MAX_BODY // 1024),
        "broadcast_engine.sender_workers": "1",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.drain_poll": "'500ms'",
    })
    edge = Edge(port)
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("the edge serving /metrics", edge.up, 60)
        urls = send_broadcast(r, db, edge, sinkf)
        run_unsubscribe(r, db, edge, urls)
        run_webhooks(r, db, edge)
        run_protocol(r, db, edge)
        run_limits(r, db, edge)
        run_metrics(r, db, edge)
        run_sigterm(r, db, edge)
        run_browser(r, db, edge, urls[5])
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
        raise
    finally:
        c.destroy()
        sink.kill()


def send_broadcast(r, db, edge, sinkf):
    """Six members get a message whose List-Unsubscribe points at the edge; returns email -> URL."""
    db.q("""SELECT broadcast.create_workspace('ed', 'Edge', 'UTC', jsonb_build_object(
            'unsubscribe_base_url', %s, 'default_from_email', 'news@example.test'))""",
         "http://127.0.0.1:%d/u" % edge.port)
    db.q("SELECT broadcast.create_list('ed', 'l', 'Readers')")
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email)
            SELECT 'ed', 'r' || i || '@example.com' FROM generate_series(1, 6) i""")
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT 'ed', 'l', 'r' || i || '@example.com' FROM generate_series(1, 6) i""")
    db.q("""SELECT broadcast.create_template('ed', 't', 'Hello',
            '<p>Hi</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')""")
    db.q("SELECT broadcast.create_integration('ed', 'smtp', 'smtp', %s)",
         json.dumps({"host": "127.0.0.1", "port": int(sinkf["port"]), "tls": "none"}))
    db.q("SELECT broadcast.create_broadcast('ed', 'b', 'b', '{l}', 'smtp', 't')")
    db.q("SELECT broadcast.schedule_broadcast('ed', 'b')")
    wait_for("broadcast completed", lambda: db.one(
        "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'ed' AND broadcast_id = 'b'") == "completed", 60)
    with urllib.request.urlopen("http://127.0.0.1:%s/_mock/messages" % sinkf["http"], timeout=10) as resp:
        msgs = json.loads(resp.read())
    msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
    urls = {}
    for m in msgs:
        msg = email.message_from_bytes(m["raw"].encode("utf-8"), policy=email.policy.default)
        lu = str(msg["List-Unsubscribe"])
        found = re.search(r"<(http://[^>]+)>", lu)
        if found:
            urls[m["recipient"]] = found.group(1)
    r.check("sent: every message's List-Unsubscribe points at the edge's /u/",
            len(urls) == 6 and all(u.startswith("http://127.0.0.1:%d/u/" % edge.port) for u in urls.values()),
            (len(msgs), urls))
    return [urls["r%d@example.com" % i] for i in range(1, 7)]


def path_of(url):
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def run_unsubscribe(r, db, edge, urls):
    # GET shows the page and unsubscribes no one
    st, h, body = edge.req("GET", path_of(urls[0]))
    r.check("GET /u/<token>: 200 HTML page whose button POSTs, no cookie",
            st == 200 and h.get("content-type", "").startswith("text/html") and '<form method="post">' in body
            and "<button" in body and "set-cookie" not in h, (st, h, body[:300]))
    st, h, body = edge.req("HEAD", path_of(urls[0]))
    r.check("HEAD /u/<token>: 200, no body", st == 200 and body == "", (st, body[:100]))
    r.check("GET does not unsubscribe", member_status(db, "r1@example.com") == "active",
            member_status(db, "r1@example.com"))

    # one-click POST (RFC 8058), with the curl command line
    out = subprocess.run(["curl", "-s", "-i", "-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded",
                          "--data", "List-Unsubscribe=One-Click", urls[0]], capture_output=True, text=True, timeout=30)
    head = out.stdout.split("\r\n\r\n", 1)[0].lower()
    r.check("one-click POST (curl): 200, no Set-Cookie, no Location",
            head.startswith("http/1.1 200") and "set-cookie" not in head and "location" not in head, out.stdout[:400])
    r.check("one-click POST: the member is unsubscribed", member_status(db, "r1@example.com") == "unsubscribed",
            member_status(db, "r1@example.com"))
    st, h, body = edge.req("POST", path_of(urls[0]), "List-Unsubscribe=One-Click",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    r.check("one-click POST again: still 200 (nothing left to change)", st == 200, (st, body))

    # the form's POST
    st, h, body = edge.req("POST", path_of(urls[1]), "confirm=yes", {"Content-Type": "application/x-www-form-urlencoded"})
    r.check("form POST: 200 'you are unsubscribed' page",
            st == 200 and h.get("content-type", "").startswith("text/html") and "unsubscribed" in body.lower()
            and "<button" not in body, (st, body[:300]))
    r.check("form POST: the member is unsubscribed", member_status(db, "r2@example.com") == "unsubscribed",
            member_status(db, "r2@example.com"))

    # tampered and unknown tokens
    tok = path_of(urls[2])
    i = len(tok) - 5
    tampered = tok[:i] + ("A" if tok[i] != "A" else "B") + tok[i + 1:]
    for name, path in (("tampered", tampered), ("unknown", "/u/not-a-token"), ("truncated", tok[:-10])):
        st, h, body = edge.req("GET", path)
        st2, _, body2 = edge.req("POST", path, "List-Unsubscribe=One-Click")
        r.check("%s token: GET and POST answer 400 with a plain page" % name,
                st == 400 and st2 == 400 and "not valid" in body and "<form" not in body, (st, st2, body[:200]))
    r.check("no one was unsubscribed by bad tokens", member_status(db, "r3@example.com") == "active")

    # the workspace's own texts, escaped
    db.q("""SELECT broadcast.update_workspace('ed', '{"unsubscribe_page": {"title": "Bye <b>now</b>",
            "text": "Leave \\"Edge & Co\\" <script>alert(1)</script>?", "button": "Yes, <i>stop</i>",
            "done": "Gone & done"}}')""")
    st, h, body = edge.req("GET", path_of(urls[3]))
    r.check("workspace page texts show, HTML-escaped",
            st == 200 and "Bye &lt;b&gt;now&lt;/b&gt;" in body and "&lt;script&gt;" in body and "<script>" not in body
            and "&quot;Edge &amp; Co&quot;" in body and "Yes, &lt;i&gt;stop&lt;/i&gt;" in body, body[:600])
    st, h, body = edge.req("POST", path_of(urls[3]), "confirm=yes")
    r.check("the workspace's 'done' text after the form POST", st == 200 and "Gone &amp; done" in body, body[:400])
    try:
        db.q("""SELECT broadcast.update_workspace('ed', '{"unsubscribe_page": {"titel": "x"}}')""")
        bad = None
    except Exception as e:  # noqa: BLE001
        bad = str(e)
    r.check("update_workspace refuses an unknown unsubscribe_page key", bad and "unknown unsubscribe_page key" in bad, bad)


def run_webhooks(r, db, edge):
    db.q("""SELECT broadcast.create_integration('ed', 'mg', 'mailgun', '{"domain": "mg.example.test"}', 'key')""")
    db.q("SELECT broadcast.set_webhook_secret('ed', 'mg', %s)", MG_KEY)
    mid = db.one("""INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, variation,
                    list_id, email, integration_id, provider, status, sent_at)
                    VALUES ('ed', gen_random_uuid(), 'b', 't', 0, 'l', 'r1@example.com', 'mg', 'mailgun', 'sent', now())
                    RETURNING message_id::text""")
    body = mailgun_body(mid)
    st, h, text = edge.req("POST", "/hooks/ed/mg", body, {"Content-Type": "application/json"})
    opened = db.one("SELECT opened_at IS NOT NULL FROM broadcast.message_history WHERE message_id = %s", mid)
    r.check("webhook signed right: 200 and the event applied", st == 200 and opened and '"applied": 1' in text,
            (st, text, opened))
    st, h, text = edge.req("POST", "/hooks/ed/mg", mailgun_body(mid, key="another-key"))
    r.check("webhook with a bad signature: 401 (not retried)", st == 401 and "signature" in text, (st, text))
    st, h, text = edge.req("POST", "/hooks/ed/nope", body)
    r.check("webhook for an unknown integration: 404", st == 404, (st, text))
    st, h, text = edge.req("POST", "/hooks/ed/mg", "{not json")
    r.check("webhook with a body that is not JSON: 400", st == 400, (st, text))
    st, h, text = edge.req("POST", "/hooks/ed/mg", b"\xff\xfe{}")
    r.check("webhook with a body that is not UTF-8: 400", st == 400, (st, text))
    big = "x" * (MAX_BODY + 1)
    st, h, text = edge.req("POST", "/hooks/ed/mg", big)
    r.check("oversized body with Content-Length: 413", st == 413, (st, text))
    # the same without a length (chunked): read and refused at the end
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
    conn.putrequest("POST", "/hooks/ed/mg")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for _ in range(5):
        chunk = ("y" * 20000).encode()
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    st = resp.status
    resp.read()
    conn.close()
    r.check("oversized chunked body: 413", st == 413, st)
    st, h, text = edge.req("GET", "/hooks/ed/mg")
    r.check("GET on a webhook: 405 with Allow: POST", st == 405 and h.get("allow") == "POST", (st, h))


def run_protocol(r, db, edge):
    st, h, text = edge.req("GET", "/nothing-here")
    st2, _, _ = edge.req("GET", "/u/")
    st3, _, _ = edge.req("POST", "/hooks/ed")
    r.check("unknown paths: 404", st == 404 and st2 == 404 and st3 == 404, (st, st2, st3))
    st, h, text = edge.req("DELETE", "/metrics")
    r.check("DELETE /metrics: 405 with Allow: GET, HEAD", st == 405 and h.get("allow") == "GET, HEAD", (st, h))
    st, h, text = edge.req("PUT", "/u/abc")
    r.check("PUT /u/x: 405 with Allow: GET, HEAD, POST", st == 405 and h.get("allow") == "GET, HEAD, POST", (st, h))
    pid = edge_pid(db)
    # a request line of the right shape but wrong content gets 400 (431 for huge headers);
    # bytes that are no HTTP request line at all make libmicrohttpd close the connection
    shaped = [b"GET /metrics HTTP/1.1 extra\r\n\r\n", b"GET /metrics HTTP/1.1\r\nNo colon header\r\n\r\n",
              b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n"]
    garbage = [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n"]
    answers = [edge.raw(b) for b in shaped]
    r.check("malformed request lines and headers (raw socket): 400",
            all(a.startswith(b"HTTP/1.1 400") for a in answers), [a[:40] for a in answers])
    answer = edge.raw(b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"a" * 100000 + b"\r\n\r\n")
    r.check("headers above the connection's memory limit: 431", answer.startswith(b"HTTP/1.1 431"), answer[:40])
    answers = [edge.raw(b) for b in garbage]
    r.check("bytes that are no request line: 400 or the connection closed",
            all(a == b"" or a.startswith(b"HTTP/1.1 400") for a in answers), [a[:40] for a in answers])
    r.check("the worker survives malformed requests", edge.up() and edge_pid(db) == pid, (pid, edge_pid(db)))


def run_limits(r, db, edge):
    pid = edge_pid(db)
    # slowloris: a header byte a second, never finishing
    result = {}

    def slow():
        s = socket.create_connection(("127.0.0.1", edge.port), timeout=30)
        t0 = time.time()
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.time() - t0 < 30:
                time.sleep(1)
                s.sendall(b"a")
        except OSError:
            pass
        result["cut_after"] = time.time() - t0
        s.close()

    t = threading.Thread(target=slow)
    t.start()
    served = 0
    t0 = time.time()
    while t.is_alive() and time.time() - t0 < 40:
        if edge.req("GET", "/metrics")[0] == 200:
            served += 1
        time.sleep(0.2)
    t.join(5)
    cut = result.get("cut_after", 99)
    r.check("slowloris client cut after the request timeout (%.1fs, limit %ds), %d requests served meanwhile"
            % (cut, TIMEOUT_S, served), TIMEOUT_S - 0.5 <= cut <= TIMEOUT_S + 4 and served >= 3, (cut, served))

    # more connections than the limit: held open, the idle ones time out and service resumes
    held = []
    for _ in range(MAX_CONN * 3):
        try:
            held.append(socket.create_connection(("127.0.0.1", edge.port), timeout=5))
        except OSError:
            pass
    wait_for("a request served while %d connections are held" % len(held), edge.up, TIMEOUT_S + 15, 0.2)
    for s in held:
        s.close()
    r.check("more connections than the limit: the edge serves again, same worker",
            edge.up() and edge_pid(db) == pid, (pid, edge_pid(db)))


def run_metrics(r, db, edge):
    # queued rows that are not due for a day: no sender takes them
    db.q("SELECT broadcast.create_workspace('mq', 'Queued')")
    db.q("""SELECT broadcast.create_integration('mq', 'slow', 'smtp', '{"host": "127.0.0.1", "port": 9}')""")
    db.q("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id, message_id,
                                              next_attempt_at)
            SELECT 'mq', 'b', 'q' || i || '@example.com', 'slow', 'l', gen_random_uuid(), now() + interval '1 day'
              FROM generate_series(1, 7) i""")
    st, h, text = edge.req("GET", "/metrics")
    r.check("/metrics: 200 in Prometheus text format 0.0.4",
            st == 200 and h.get("content-type", "").startswith("text/plain; version=0.0.4"), (st, h))
    r.check("/metrics: the queue depth of a workspace with queued rows",
            'broadcast_engine_queue_depth{workspace="mq",integration="slow"} 7' in text, text[:800])
    r.check("/metrics: sent counter, breaker state, stage timings, task lag present",
            'broadcast_engine_messages_sent_total{workspace="ed"} 6' in text and "# TYPE broadcast_engine_breaker_state gauge" in text
            and "broadcast_engine_worker_stage_seconds_total{kind=\"sender\"" in text
            and "# TYPE broadcast_engine_task_lag_seconds gauge" in text, text[:1500])
    promtool = shutil.which("promtool")
    if promtool is None:
        r.check("promtool (Debian prometheus) is installed: scripts/install-deps.sh", False)
        return
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    r.check("/metrics passes promtool check metrics", p.returncode == 0, (p.stdout + p.stderr)[:800])


def run_sigterm(r, db, edge):
    pid = edge_pid(db)
    os.kill(pid, signal.SIGTERM)
    wait_for("a new edge worker", lambda: (edge_pid(db) or pid) != pid, 30)
    wait_for("the restarted edge serving", edge.up, 30)
    r.check("SIGTERM: the edge is restarted and serves again", edge_pid(db) != pid and edge.up())


# ---- a real browser, over the Chrome DevTools protocol ----

class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client-masked."""

    def __init__(self, url, timeout=30):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (m.group(3), m.group(1), m.group(2), key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("websocket handshake refused: %r" % head[:200])
        self.next_id = 0

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("websocket closed")
            out += chunk
        return out

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise RuntimeError("websocket closed by the browser")
            if op in (0x9, 0xA):  # ping/pong: nothing to do for a short test
                continue
            message += payload
            if b0 & 0x80:
                return message.decode("utf-8", "replace")

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def evaluate(self, expr):
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return res.get("result", {}).get("value")

    def close(self):
        self.sock.close()


def run_browser(r, db, edge, url):
    chromium = shutil.which("chromium")
    if chromium is None:
        r.check("chromium is installed (scripts/install-deps.sh)", False)
        return
    profile = tempfile.mkdtemp(prefix="be-chromium-")
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--no-first-run",
                             "--user-data-dir=%s" % profile, "--remote-debugging-port=0", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ws = None
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        wait_for("chromium's DevTools port", lambda: os.path.exists(port_file) and open(port_file).read().strip(), 60, 0.2)
        devtools = int(open(port_file).read().split()[0])

        def page_target():
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % devtools, timeout=5) as resp:
                pages = [t for t in json.loads(resp.read()) if t.get("type") == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        ws = WebSocket(wait_for("a page target", page_target, 30, 0.2))
        ws.call("Page.navigate", url=url)
        wait_for("the unsubscribe page with its button",
                 lambda: ws.evaluate("document.readyState === 'complete' && !!document.querySelector('button')"), 30, 0.2)
        r.check("browser: the page loaded and the member is still subscribed",
                member_status(db, "r6@example.com") == "active", member_status(db, "r6@example.com"))
        ws.evaluate("document.querySelector('button').click()")
        wait_for("the member unsubscribed by the click",
                 lambda: member_status(db, "r6@example.com") == "unsubscribed", 30, 0.2)
        text = wait_for("the page after the click",
                        lambda: ws.evaluate("document.querySelector('button') ? '' : document.body.innerText"), 30, 0.2)
        r.check("browser: clicking the button unsubscribes and shows the 'done' page",
                member_status(db, "r6@example.com") == "unsubscribed" and "Gone & done" in text, text)
    finally:
        if ws:
            ws.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
