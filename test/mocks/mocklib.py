"""Shared pieces of the broadcast_engine test servers (HTTP provider mock and SMTP sink).

Only the Python standard library is used here.  What lives here:

* ``Recorder``  - the in-memory (and optional JSONL file) log of accepted messages;
* ``Stats``     - per-provider counters of requests, messages and status codes;
* ``FaultTable``- the fault rules posted to ``POST /_mock/faults`` and their
                  deterministic (seeded) evaluation;
* ``parse_mime``- turns raw RFC 5322/MIME bytes into the recorded fields;
* ``ControlAPI``- the JSON control endpoints shared by both servers
                  (``/_mock/messages``, ``/_mock/stats``, ``/_mock/reset``,
                  ``/_mock/faults``).
"""

import base64
import email.parser
import email.policy
import json
import os
import random
import threading
import time
import uuid

# ---------------------------------------------------------------------------
# ids and time


_id_lock = threading.Lock()
_id_counter = 0


def next_seq():
    """A process-wide increasing integer (used in ids so they are unique and sortable)."""
    global _id_counter
    with _id_lock:
        _id_counter += 1
        return _id_counter


def hex_id(n=16):
    return os.urandom(n // 2 + 1).hex()[:n]


def uuid4():
    return str(uuid.uuid4())


def iso_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


# ---------------------------------------------------------------------------
# MIME


def _header_pairs(msg):
    return [[k, str(v)] for k, v in msg.items()]


def parse_mime(raw):
    """Parse raw message bytes into the fields the recorder stores.

    Returns a dict with ``headers`` (name -> decoded value; the last one wins),
    ``header_list`` (every header in order, so duplicates are visible),
    ``subject``, ``from``, ``to``, ``text``, ``html`` and ``mime_parts`` (the
    content types of the leaf parts in order, e.g. ``["text/plain","text/html"]``,
    so a test can check RFC 2046's text-then-HTML order).  Never raises: a
    message that cannot be parsed gives ``{"parse_error": ...}``.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    out = {}
    try:
        msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
        out["header_list"] = _header_pairs(msg)
        out["headers"] = {k: v for k, v in out["header_list"]}
        out["subject"] = str(msg.get("Subject", "")) if msg.get("Subject") is not None else None
        out["from"] = str(msg.get("From")) if msg.get("From") is not None else None
        out["to"] = str(msg.get("To")) if msg.get("To") is not None else None
        parts = []
        text = html = None
        for part in msg.walk():
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            parts.append(ctype)
            if part.get_content_disposition() == "attachment":
                continue
            try:
                content = part.get_content()
            except Exception:  # undecodable charset etc.
                payload = part.get_payload(decode=True) or b""
                content = payload.decode("utf-8", "replace")
            if isinstance(content, bytes):
                content = content.decode("utf-8", "replace")
            if ctype == "text/plain" and text is None:
                text = content
            elif ctype == "text/html" and html is None:
                html = content
        out["text"] = text
        out["html"] = html
        out["mime_parts"] = parts
        out["defects"] = [type(d).__name__ for d in msg.defects]
    except Exception as exc:  # pragma: no cover - defensive
        out["parse_error"] = repr(exc)
    return out


def b64decode_strict(data):
    """Strict base64 (the AWS JSON protocols send blobs as standard base64)."""
    if isinstance(data, str):
        data = data.encode("ascii")
    return base64.b64decode(data, validate=True)


# ---------------------------------------------------------------------------
# recorder


class Recorder:
    """Every accepted message, in memory and optionally appended to a JSONL file.

    One record per recipient of an accepted message.  Common fields:
    ``seq, ts, provider, endpoint, auth, recipient, from, subject, headers,
    html, text, raw, carried, be_message_id, provider_message_id`` plus
    provider-specific extras.  ``be_message_id`` is the engine's message id
    when the sender carried it under the key ``message_id`` (custom_args,
    ``v:message_id``, Metadata, EmailTags, recipient metadata, tags) or in
    Mailjet's ``CustomID``.
    """

    def __init__(self, path=None):
        self.path = path
        self.lock = threading.Lock()
        self.items = []
        self._fh = open(path, "a", encoding="utf-8") if path else None

    def add(self, rec):
        with self.lock:
            rec.setdefault("seq", len(self.items) + 1)
            rec.setdefault("ts", iso_now())
            self.items.append(rec)
            if self._fh:
                self._fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
                self._fh.flush()

    def list(self, provider=None, recipient=None):
        with self.lock:
            items = list(self.items)
        if provider:
            items = [r for r in items if r.get("provider") == provider]
        if recipient:
            rl = recipient.lower()
            items = [r for r in items if (r.get("recipient") or "").lower() == rl
                     or rl in [(x or "").lower() for x in r.get("recipients") or []]]
        return items

    def reset(self):
        with self.lock:
            self.items = []


def normalise_be_message_id(carried):
    """Pick the engine's own message id out of the carried correlation values.

    ``carried`` maps a source name (``custom_args``, ``v``, ``Metadata``, ``EmailTags``,
    ``metadata``, ``CustomID``, ``tags``, ...) to what the request carried there.
    """
    for src, val in carried.items():
        if isinstance(val, dict) and val.get("message_id") not in (None, ""):
            return str(val["message_id"])
    if carried.get("CustomID"):
        return str(carried["CustomID"])
    return None


# ---------------------------------------------------------------------------
# stats


class Stats:
    """Counters per provider: requests, messages, status codes, faults applied."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.providers = {}
            self.connections = 0
            self.started = time.time()

    def _p(self, provider):
        return self.providers.setdefault(
            provider, {"requests": 0, "messages": 0, "status": {}, "faults": {}})

    def request(self, provider):
        with self.lock:
            self._p(provider)["requests"] += 1

    def messages(self, provider, n):
        with self.lock:
            self._p(provider)["messages"] += n

    def status(self, provider, code):
        with self.lock:
            st = self._p(provider)["status"]
            st[str(code)] = st.get(str(code), 0) + 1

    def fault(self, provider, mode):
        with self.lock:
            f = self._p(provider)["faults"]
            f[mode] = f.get(mode, 0) + 1

    def connection(self):
        with self.lock:
            self.connections += 1

    def snapshot(self, extra=None):
        with self.lock:
            out = {"providers": json.loads(json.dumps(self.providers)),
                   "connections": self.connections,
                   "uptime_s": round(time.time() - self.started, 3)}
        if extra:
            out.update(extra)
        return out


# ---------------------------------------------------------------------------
# faults

RULE_KEYS = {"provider", "mode", "status", "retry_after", "count", "probability",
             "match_recipient", "delay_ms", "error_code", "message", "endpoint",
             "max_s", "reset", "stage"}


class FaultRule:
    def __init__(self, d, index):
        unknown = set(d) - RULE_KEYS
        if unknown:
            raise ValueError("unknown rule keys: %s" % ", ".join(sorted(unknown)))
        if "mode" not in d:
            raise ValueError("rule %d: 'mode' is required" % index)
        self.spec = dict(d)
        self.index = index
        self.provider = d.get("provider", "*")
        self.mode = d["mode"]
        self.status = d.get("status")
        self.retry_after = d.get("retry_after")
        self.count = int(d.get("count", -1))
        self.probability = d.get("probability")
        self.match_recipient = (d.get("match_recipient") or "").lower() or None
        self.delay_ms = int(d.get("delay_ms", 0) or 0)
        self.error_code = d.get("error_code")
        self.message = d.get("message")
        self.endpoint = d.get("endpoint")
        self.max_s = float(d.get("max_s", 60))
        self.reset = bool(d.get("reset", False))
        self.stage = d.get("stage")
        self.applied = 0

    def to_json(self):
        d = dict(self.spec)
        d["remaining"] = self.count
        d["applied"] = self.applied
        return d


class FaultTable:
    """Fault rules, evaluated in the order they were posted.

    A rule applies to a request (or, for ``per_message_error`` and the SMTP
    ``rcpt_status`` mode, to one message/recipient) when its ``provider`` is
    ``"*"`` or equal, its optional ``endpoint`` is a substring of the path,
    its optional ``match_recipient`` is one of the recipients, its ``count``
    is not used up (-1 = forever), and the seeded RNG roll is below its
    ``probability`` (when given).  Applying a rule decrements ``count``.
    """

    def __init__(self, seed=0):
        self.lock = threading.Lock()
        self.rules = []
        self.rng = random.Random(seed)
        self.seed = seed

    def set(self, rules, append=False):
        if isinstance(rules, dict):
            rules = rules.get("rules", [rules])
        if not isinstance(rules, list):
            raise ValueError("expected a list of rules")
        parsed = [FaultRule(r, i) for i, r in enumerate(rules)]
        with self.lock:
            self.rules = (self.rules + parsed) if append else parsed

    def clear(self):
        with self.lock:
            self.rules = []
            self.rng = random.Random(self.seed)

    def to_json(self):
        with self.lock:
            return [r.to_json() for r in self.rules]

    def _matches(self, r, provider, recipients, endpoint):
        if r.count == 0:
            return False
        if r.provider not in ("*", provider):
            return False
        if r.endpoint and (endpoint is None or r.endpoint not in endpoint):
            return False
        if r.match_recipient:
            if not any((x or "").lower() == r.match_recipient for x in recipients or ()):
                return False
        if r.probability is not None and self.rng.random() >= float(r.probability):
            return False
        return True

    def _consume(self, r):
        if r.count > 0:
            r.count -= 1
        r.applied += 1

    def pick(self, provider, recipients, endpoint=None, modes=None):
        """Return the rules to apply now: all matching ``slow`` rules plus the
        first matching rule of any other mode in ``modes`` (request-level)."""
        chosen = []
        with self.lock:
            for r in self.rules:
                if modes is not None and r.mode not in modes:
                    continue
                if not self._matches(r, provider, recipients, endpoint):
                    continue
                self._consume(r)
                chosen.append(r)
                if r.mode != "slow":
                    break
        return chosen

    def pick_one(self, provider, recipients, endpoint=None, modes=()):
        """First matching rule among ``modes`` (used per message / per recipient)."""
        with self.lock:
            for r in self.rules:
                if r.mode not in modes:
                    continue
                if self._matches(r, provider, recipients, endpoint):
                    self._consume(r)
                    return r
        return None


# ---------------------------------------------------------------------------
# control API


class ControlAPI:
    """``/_mock/*`` endpoints shared by the HTTP mock and the SMTP sink's control port.

    GET  /_mock/messages?provider=X&recipient=Y -> {"messages":[...], "count":N}
    GET  /_mock/stats                           -> counters
    GET  /_mock/faults                          -> current rules with remaining counts
    POST /_mock/faults   body: [rule, ...] or {"rules":[...], "append":bool}
    POST /_mock/reset                           -> clears messages, stats, faults (and
                                                   idempotency cache of the HTTP mock)
    GET  /_mock/health                          -> {"ok":true}
    """

    def __init__(self, recorder, stats, faults, on_reset=None, extra_stats=None, extra_routes=None):
        self.recorder = recorder
        self.stats = stats
        self.faults = faults
        self.on_reset = on_reset
        self.extra_stats = extra_stats
        self.extra_routes = extra_routes or {}

    def handle(self, method, path, query, body):
        """Return (status, json_obj) for a control path, or None when not a control path."""
        if not path.startswith("/_mock/"):
            return None
        q = {k: v[-1] for k, v in query.items()}
        try:
            if (method, path) in self.extra_routes:
                return self.extra_routes[(method, path)](q, body)
            if method == "GET" and path == "/_mock/messages":
                msgs = self.recorder.list(q.get("provider"), q.get("recipient"))
                return 200, {"count": len(msgs), "messages": msgs}
            if method == "GET" and path == "/_mock/stats":
                return 200, self.stats.snapshot(self.extra_stats() if self.extra_stats else None)
            if method == "GET" and path == "/_mock/faults":
                return 200, {"rules": self.faults.to_json()}
            if method == "GET" and path == "/_mock/health":
                return 200, {"ok": True}
            if method == "POST" and path == "/_mock/reset":
                self.recorder.reset()
                self.stats.reset()
                self.faults.clear()
                if self.on_reset:
                    self.on_reset()
                return 200, {"ok": True}
            if method == "POST" and path == "/_mock/faults":
                data = json.loads(body or b"[]")
                append = isinstance(data, dict) and bool(data.get("append"))
                self.faults.set(data, append=append)
                return 200, {"ok": True, "rules": self.faults.to_json()}
            if method == "DELETE" and path == "/_mock/faults":
                self.faults.clear()
                return 200, {"ok": True}
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": "unknown control path %s %s" % (method, path)}
