#!/usr/bin/env python3
"""SMTP sink for broadcast_engine's tests, built on aiosmtpd (Debian python3-aiosmtpd).

    python3 test/mocks/smtp_sink.py --port PORT [--http-port HP] [--record FILE.jsonl]
                                    [--tls-cert C --tls-key K] [--auth user:pass]
                                    [--implicit-tls] [--hostname NAME] [--seed N]

Prints ``READY port=PORT http=HP`` once both listeners are up (``--port 0`` /
``--http-port 0``, the default for the control port, pick free ports).  Binds
127.0.0.1 only.

SMTP: EHLO/HELO, STARTTLS when a certificate is given (``--implicit-tls``
wraps the whole connection instead, as smtps:// on 465), AUTH PLAIN and LOGIN
(required when ``--auth`` is given; allowed without TLS because the tests run
on loopback; without ``--auth`` any credentials are accepted and recorded),
SIZE, 8BITMIME, SMTPUTF8.  Every accepted message is recorded (envelope,
EHLO name, TLS/AUTH use and the password given, connection id and index, raw data, parsed headers)
and answered ``250 2.0.0 Ok: queued as <ID>`` with a unique queue id (the id
libcurl hands to CURLOPT_HEADERFUNCTION, see esp-apis.md section 2).

Control API on the HTTP port: the same as mock_provider.py (``/_mock/messages``,
``/_mock/stats``, ``/_mock/reset``, ``/_mock/faults``); SMTP fault modes:
``mail_status``, ``rcpt_status`` (per recipient, ``match_recipient``),
``data_status``, ``slow`` (``delay_ms`` before the reply at ``stage``
connect|mail|rcpt|data, default data) and ``drop`` (close the connection at
``stage``, default data).
"""

import argparse
import asyncio
import http.server
import json
import os
import signal
import socketserver
import ssl
import sys
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
try:
    import aiosmtpd.smtp  # noqa: F401
except ImportError:  # e.g. a pyenv python3 first in PATH: use Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import aiosmtpd.smtp  # noqa: F401
from aiosmtpd.smtp import SMTP, AuthResult  # noqa: E402

from mocklib import ControlAPI, FaultTable, Recorder, Stats, hex_id, parse_mime  # noqa: E402

PROVIDER = "smtp"
DEFAULT_REPLY = {
    ("rcpt", 450): "450 4.2.0 <{rcpt}>: Recipient address rejected: Mailbox busy, try again later",
    ("rcpt", 451): "451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, try again later",
    ("rcpt", 452): "452 4.5.3 Too many recipients",
    ("rcpt", 550): "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table",
    ("rcpt", 552): "552 5.2.2 <{rcpt}>: Mailbox full",
    ("rcpt", 553): "553 5.1.3 <{rcpt}>: Recipient address rejected: Bad recipient address syntax",
    ("data", 451): "451 4.3.0 Error: queue file write error",
    ("data", 452): "452 4.3.1 Insufficient system storage",
    ("data", 454): "454 4.7.0 Throttling failure: Maximum sending rate exceeded.",
    ("data", 550): "550 5.7.1 Messages missing a valid Message-ID header are not accepted.",
    ("data", 552): "552 5.3.4 Message size exceeds fixed limit",
    ("data", 554): "554 5.7.1 Message rejected: content rejected",
    ("mail", 421): "421 4.7.0 Too many connections, closing transmission channel",
    ("mail", 451): "451 4.3.0 Temporary failure, try again later",
    ("mail", 454): "454 4.7.0 Throttling failure: Daily message quota exceeded.",
    ("mail", 550): "550 5.7.1 Sender rejected: access denied",
    ("mail", 553): "553 5.1.8 Sender address rejected: Domain not found",
}


def reply_text(stage, rule, rcpt=""):
    if rule.message:
        return "%d %s" % (int(rule.status), rule.message) if not str(rule.message)[:3].isdigit() else rule.message
    status = int(rule.status or (451 if stage != "data" else 451))
    t = DEFAULT_REPLY.get((stage, status))
    if t is None:
        cls = str(status)[0]
        t = "%d %s.0.0 Mock %s failure" % (status, cls, stage)
    return t.format(rcpt=rcpt)


class Sink:
    def __init__(self, args):
        self.args = args
        self.recorder = Recorder(args.record)
        self.stats = Stats()
        self.faults = FaultTable(args.seed)
        self.lock = threading.Lock()
        self.conn_seq = 0
        self.open_conns = 0
        self.counters = {}
        self.control = ControlAPI(self.recorder, self.stats, self.faults, on_reset=self.on_reset,
                                  extra_stats=self.extra_stats)
        self.auth = None
        if args.auth:
            user, _, pw = args.auth.partition(":")
            self.auth = (user, pw)

    def on_reset(self):
        with self.lock:
            self.counters = {}
            self.conn_seq = 0

    def count(self, name, n=1):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def extra_stats(self):
        with self.lock:
            return {"smtp": dict(self.counters), "open_connections": self.open_conns}

    def new_conn(self):
        with self.lock:
            self.conn_seq += 1
            self.open_conns += 1
            cid = self.conn_seq
        self.stats.connection()
        return cid

    def closed_conn(self):
        with self.lock:
            self.open_conns -= 1

    # aiosmtpd authenticator ---------------------------------------------
    def authenticator(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data.login, bytes) else str(auth_data.login)
        pw = auth_data.password.decode("utf-8", "replace") if isinstance(auth_data.password, bytes) else str(auth_data.password)
        ok = self.auth is None or (login, pw) == self.auth
        self.count("auth_ok" if ok else "auth_failed")
        if ok:
            server.be_auth = {"user": login, "mechanism": mechanism, "password": pw}
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    # hooks ------------------------------------------------------------------
    async def _slow(self, stage, rcpts=None):
        rule = self.faults.pick_one(PROVIDER, rcpts or [], None, ("slow",)) if self._has("slow", stage) else None
        if rule is not None:
            self.stats.fault(PROVIDER, "slow")
            await asyncio.sleep(rule.delay_ms / 1000.0)

    def _has(self, mode, stage):
        with self.faults.lock:
            return any(r.mode == mode and r.count != 0 and (r.stage or "data") == stage
                       for r in self.faults.rules)

    def _drop(self, server, stage, rcpts=None):
        if not self._has("drop", stage):
            return False
        rule = self.faults.pick_one(PROVIDER, rcpts or [], None, ("drop",))
        if rule is None:
            return False
        self.stats.fault(PROVIDER, "drop")
        self.count("dropped")
        if server.transport is not None:
            server.transport.abort()
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.stats.request(PROVIDER)
        await self._slow("mail")
        if self._drop(server, "mail"):
            return "421 4.4.2 Connection dropped"
        rule = self.faults.pick_one(PROVIDER, [], None, ("mail_status",))
        if rule is not None:
            self.stats.fault(PROVIDER, "mail_status")
            self.stats.status(PROVIDER, int(rule.status or 451))
            return reply_text("mail", rule)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self._slow("rcpt", [address])
        if self._drop(server, "rcpt", [address]):
            return "421 4.4.2 Connection dropped"
        rule = self.faults.pick_one(PROVIDER, [address], None, ("rcpt_status",))
        if rule is not None:
            self.stats.fault(PROVIDER, "rcpt_status")
            self.stats.status(PROVIDER, int(rule.status or 451))
            self.count("rcpt_rejected")
            return reply_text("rcpt", rule, address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_RSET(self, server, session, envelope):
        self.count("rset")
        return "250 2.0.0 Ok"

    async def handle_DATA(self, server, session, envelope):
        rcpts = list(envelope.rcpt_tos)
        await self._slow("data", rcpts)
        if self._drop(server, "data", rcpts):
            return "421 4.4.2 Connection dropped"
        rule = self.faults.pick_one(PROVIDER, rcpts, None, ("data_status",))
        if rule is not None:
            self.stats.fault(PROVIDER, "data_status")
            self.stats.status(PROVIDER, int(rule.status or 451))
            return reply_text("data", rule)
        qid = hex_id(12).upper()
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        p = parse_mime(raw)
        server.be_msg_index += 1
        hdrs = p.get("headers") or {}
        low = {k.lower(): v for k, v in hdrs.items()}
        tls_mode = "implicit" if self.args.implicit_tls else ("starttls" if session.ssl is not None else None)
        rec = {
            "provider": PROVIDER, "queue_id": qid,
            "connection_id": server.be_conn_id, "message_index": server.be_msg_index,
            "ehlo": session.host_name, "peer": list(session.peer or ()),
            "tls": tls_mode is not None, "tls_mode": tls_mode,
            "auth": server.be_auth is not None, "auth_user": (server.be_auth or {}).get("user"),
            "auth_mechanism": (server.be_auth or {}).get("mechanism"),
            "auth_password": (server.be_auth or {}).get("password"),
            "mail_from": envelope.mail_from, "mail_options": list(envelope.mail_options),
            "recipients": rcpts, "recipient": rcpts[0] if len(rcpts) == 1 else (rcpts[0] if rcpts else None),
            "rcpt_options": list(envelope.rcpt_options),
            "size": len(raw), "raw": raw.decode("utf-8", "replace"),
            "headers": hdrs, "header_list": p.get("header_list"),
            "subject": p.get("subject"), "from": p.get("from"), "to": p.get("to"),
            "message_id": low.get("message-id"), "list_unsubscribe": low.get("list-unsubscribe"),
            "list_unsubscribe_post": low.get("list-unsubscribe-post"),
            "text": p.get("text"), "html": p.get("html"), "mime_parts": p.get("mime_parts"),
            "defects": p.get("defects"), "provider_message_id": qid,
            "carried": {}, "be_message_id": None,
        }
        self.recorder.add(rec)
        self.stats.messages(PROVIDER, 1)
        self.stats.status(PROVIDER, 250)
        return "250 2.0.0 Ok: queued as %s" % qid


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with connection counting and per-connection message index."""

    def __init__(self, sink, *a, **kw):
        super().__init__(sink, *a, **kw)
        self.sink = sink
        self.be_conn_id = None
        self.be_msg_index = 0
        self.be_auth = None

    def connection_made(self, transport):
        first = self.be_conn_id is None
        if first:
            self.be_conn_id = self.sink.new_conn()
        else:
            self.sink.count("starttls")
        super().connection_made(transport)
        if first and self.sink._drop(self, "connect"):
            return

    def connection_lost(self, error):
        if self.be_conn_id is not None and not getattr(self, "_be_lost", False):
            self._be_lost = True
            self.sink.closed_conn()
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname):
        self.sink.count("ehlo")
        return await super().smtp_EHLO(hostname)

    async def smtp_QUIT(self, arg):
        self.sink.count("quit")
        return await super().smtp_QUIT(arg)


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sink = None

    def log_message(self, *a):
        pass

    def _go(self):
        parts = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        res = self.sink.control.handle(self.command, parts.path,
                                       urllib.parse.parse_qs(parts.query), body)
        status, obj = res if res is not None else (404, {"error": "not a control path"})
        data = json.dumps(obj, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _go


class ControlServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description="SMTP sink for broadcast_engine tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--record")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--auth", help="user:pass; AUTH becomes required")
    ap.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (smtps)")
    ap.add_argument("--hostname", default="mock-smtp.local", help="name in the banner and EHLO reply")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-size", type=int, default=33554432, help="SIZE limit in bytes")
    args = ap.parse_args(argv)
    if not (args.host.startswith("127.") or args.host in ("localhost", "::1")):
        ap.error("the sink binds loopback addresses only")
    if args.implicit_tls and not (args.tls_cert and args.tls_key):
        ap.error("--implicit-tls needs --tls-cert and --tls-key")
    sink = Sink(args)
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)

    def factory():
        return SinkSMTP(sink, hostname=args.hostname,
                        tls_context=None if args.implicit_tls else ctx,
                        require_starttls=False,
                        authenticator=sink.authenticator,
                        auth_required=sink.auth is not None,
                        auth_require_tls=False,
                        enable_SMTPUTF8=True,
                        decode_data=False,
                        data_size_limit=args.max_size,
                        ident="broadcast-engine smtp sink")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, host=args.host, port=args.port, ssl=ctx if args.implicit_tls else None,
        reuse_address=True))
    port = server.sockets[0].getsockname()[1]
    ControlHandler.sink = sink
    http_srv = ControlServer((args.host, args.http_port), ControlHandler)
    threading.Thread(target=http_srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print("READY port=%d http=%d" % (port, http_srv.server_address[1]), flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        http_srv.shutdown()
        http_srv.server_close()
    return 0


if __name__ == "__main__":
    import logging
    import warnings
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.basicConfig(level=logging.ERROR)
    sys.exit(main())
