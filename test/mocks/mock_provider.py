#!/usr/bin/env python3
"""One HTTP/1.1 mock server speaking the send APIs of SendGrid, Mailgun, Postmark,
Amazon SES v2, SparkPost, Mailjet, Resend (and Brevo), for broadcast_engine's tests.

    python3 test/mocks/mock_provider.py --port PORT [--record FILE.jsonl] [--keys keys.json]
                                         [--seed N] [--hang-max S] [--resend-rps N] [--verbose]

Prints ``READY port=PORT`` on stdout once listening (``--port 0`` picks a free port).
Binds 127.0.0.1 only.  The provider behaviour lives in ``providers/`` (one
module per provider; each module's docstring lists the documented behaviour it
follows).  The control API is described in ``mocklib.ControlAPI`` and
docs/mocks.md.

Request pipeline, for a provider route:
  read body (Content-Length or chunked; gzip Content-Encoding decoded)
  -> provider.authenticate (real 401/403 answer on failure)
  -> provider.begin       (Resend: rate limit + Idempotency-Key check)
  -> fault rules          (slow / status / hang / drop, request level)
  -> provider.handle      (validation, per_message_error rules, recording)
  -> provider.finish      (Resend: keep the 2xx answer for replays)
"""

import argparse
import gzip
import http.server
import json
import os
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from mocklib import ControlAPI, FaultTable, Recorder, Stats, normalise_be_message_id  # noqa: E402
from providers import ALL  # noqa: E402
from providers.base import Reply, Req, Resp, Route  # noqa: E402

REQUEST_MODES = ("status", "slow", "hang", "drop")


class Ctx:
    """What a provider's handle() may use: record messages, ask for per-message faults."""

    def __init__(self, app, provider, req, route, auth):
        self.app, self.provider, self.req, self.route, self.auth = app, provider, req, route, auth
        self.recorded = 0

    def record(self, fields):
        rec = {"provider": self.provider.name, "endpoint": self.req.path, "auth": self.auth}
        rec.update(fields)
        rec.setdefault("carried", {})
        rec["be_message_id"] = normalise_be_message_id(rec["carried"])
        hdrs = rec.get("headers") or {}
        low = {k.lower(): v for k, v in hdrs.items()}
        for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"):
            if name.lower() in low:
                rec.setdefault(name.lower().replace("-", "_"), low[name.lower()])
        self.app.recorder.add(rec)
        self.app.stats.messages(self.provider.name, 1)
        self.recorded += 1

    def msg_fault(self, recipients):
        r = self.app.faults.pick_one(self.provider.name, recipients, self.req.path,
                                     modes=("per_message_error",))
        if r is not None:
            self.app.stats.fault(self.provider.name, "per_message_error")
        return r


class App:
    def __init__(self, args):
        keys = {}
        if args.keys:
            with open(args.keys, encoding="utf-8") as fh:
                keys = json.load(fh)
        self.args = args
        self.recorder = Recorder(args.record)
        self.stats = Stats()
        self.faults = FaultTable(args.seed)
        self.stopping = threading.Event()
        self.providers = []
        self.load_keys(keys)
        self.control = ControlAPI(self.recorder, self.stats, self.faults, on_reset=self.on_reset,
                                  extra_routes={("POST", "/_mock/keys"): self._post_keys,
                                                ("GET", "/_mock/keys"): self._get_keys,
                                                ("POST", "/_mock/sendgrid/events"): self._sendgrid_events,
                                                ("POST", "/_mock/postmark/webhook"): self._postmark_webhook})

    def _sendgrid_events(self, q, body):
        """A signed SendGrid Event Webhook POST for the events in body:
        {"body", "headers", "public_key"} (see providers/sendgrid.py)."""
        from providers.sendgrid import signed_event_post
        return 200, signed_event_post(json.loads(body or b"[]"), int(q.get("timestamp") or time.time()))

    def _postmark_webhook(self, q, body):
        """Postmark's webhook about a recorded message: ?recipient=&kind=
        (complaint, hard_bounce, manual); see providers/postmark.py."""
        from providers.postmark import webhook
        recs = self.recorder.list("postmark", q.get("recipient"))
        if not recs:
            return 404, {"error": "no postmark message recorded for %r" % q.get("recipient")}
        return 200, webhook(recs[-1], q.get("kind") or "complaint")

    def load_keys(self, keys):
        opts = {"rps": self.args.resend_rps}
        self.keys = keys
        self.providers = [cls(keys.get(cls.name), dict(opts)) for cls in ALL]
        self.routes = [(m, rx, name, p) for p in self.providers for (m, rx, name) in p.routes]

    def _post_keys(self, q, body):
        self.load_keys(json.loads(body or b"{}"))
        return 200, {"ok": True, "providers": sorted(self.keys)}

    def _get_keys(self, q, body):
        return 200, {"providers": sorted(self.keys)}

    def on_reset(self):
        for p in self.providers:
            p.reset()

    def route(self, method, path):
        for m, rx, name, p in self.routes:
            mt = rx.match(path)
            if mt and m == method:
                return p, Route(name, mt)
        return None, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "broadcast-engine-mock/1.0"
    app = None  # set in main()

    def setup(self):
        super().setup()
        self.app.stats.connection()

    def log_message(self, fmt, *a):
        if self.app.args.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % a))

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    # body ----------------------------------------------------------------
    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            body = b"".join(chunks)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def send(self, resp, provider=None):
        body = resp.body or b""
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        if provider is not None:
            self.app.stats.status(provider, resp.status)

    # dispatch ------------------------------------------------------------
    def dispatch(self):
        app = self.app
        parts = urllib.parse.urlsplit(self.path)
        path, qs = parts.path, parts.query
        query = urllib.parse.parse_qs(qs, keep_blank_values=True)
        try:
            body = self.read_body()
        except (ValueError, OSError, EOFError):
            self.close_connection = True
            self.send(Resp(400, {"error": "unreadable body"}))
            return
        ctl = app.control.handle(self.command, path, query, body)
        if ctl is not None:
            status, obj = ctl
            self.send(Resp(status, json.dumps(obj, default=str).encode()))
            return
        provider, route = app.route(self.command, path)
        if provider is None:
            self.send(Resp(404, {"error": "no mock route for %s %s" % (self.command, path)}))
            return
        name = provider.name
        app.stats.request(name)
        req = Req(self.command, path, query, self.headers, body, self.client_address, qs)
        resp = None
        begun = False
        try:
            try:
                auth = provider.authenticate(req)
                resp = provider.begin(req, route)
                begun = True
                if resp is None:
                    if not self.apply_faults(provider, req, route):
                        resp = None
                        return
                    ctx = Ctx(app, provider, req, route, auth)
                    resp = provider.handle(req, route, ctx)
            except Reply as r:
                resp = r.resp
            except Exception as exc:  # a bug in the mock: answer 500 and say so
                import traceback
                traceback.print_exc()
                resp = Resp(500, {"mock_error": repr(exc)})
            self.send(resp, name)
        finally:
            if begun:
                provider.finish(req, route, resp)

    def apply_faults(self, provider, req, route):
        """Apply request-level fault rules.  Returns False when no answer must be sent."""
        app = self.app
        recipients = provider.recipients(req, route)
        for rule in app.faults.pick(provider.name, recipients, req.path, REQUEST_MODES):
            app.stats.fault(provider.name, rule.mode)
            if rule.mode == "slow" or rule.delay_ms:
                time.sleep(rule.delay_ms / 1000.0)
            if rule.mode == "status":
                raise Reply(provider.error(int(rule.status or 500), rule.message, rule.retry_after,
                                           rule.error_code))
            if rule.mode == "drop":
                self.close_connection = True
                if rule.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                return False
            if rule.mode == "hang":
                self.hang(min(rule.max_s, app.args.hang_max))
                self.close_connection = True
                return False
        return True

    def hang(self, max_s):
        """Keep the connection open without answering until the client closes it,
        ``max_s`` passes, or the server stops."""
        deadline = time.time() + max_s
        sock = self.connection
        while time.time() < deadline and not self.app.stopping.is_set():
            r, _w, _x = select.select([sock], [], [], 0.2)
            if r:
                try:
                    if not sock.recv(65536, socket.MSG_PEEK):
                        return
                    sock.recv(65536)  # discard anything else the client sends
                except OSError:
                    return


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1", help="loopback only (default 127.0.0.1)")
    ap.add_argument("--record", help="append every accepted message as a JSON line")
    ap.add_argument("--keys", help="JSON file: provider -> expected credential(s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fault-probability RNG")
    ap.add_argument("--hang-max", type=float, default=60.0, help="upper bound of a 'hang' fault, s")
    ap.add_argument("--resend-rps", type=int, default=0, help="enforce Resend's requests/s limit")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not (args.host.startswith("127.") or args.host in ("localhost", "::1")):
        ap.error("the mock binds loopback addresses only")
    app = App(args)
    Handler.app = app
    srv = Server((args.host, args.port), Handler)
    port = srv.server_address[1]

    def stop(_sig, _frm):
        app.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("READY port=%d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        app.stopping.set()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
