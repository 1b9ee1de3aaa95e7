"""Resend mock: ``POST /emails`` and ``POST /emails/batch``.

Follows reference/esp-apis.md, Resend table:
* auth ``Authorization: Bearer re_...``; missing -> 401 ``missing_api_key``,
  wrong -> 403 ``invalid_api_Key`` (Resend's spelling);
* body ``from``, ``to`` (string or list, <= 50), ``cc``, ``bcc``, ``reply_to``,
  ``subject``, ``html``/``text``, ``headers{}``, ``tags[{name,value}]`` (ASCII
  letters, digits, ``_``, ``-``, <= 256 chars);
* answers ``{"id":"..."}`` and, for the batch (<= 100 emails),
  ``{"data":[{"id":...}]}``; strict batch validation (the default) rejects the
  whole batch if one entry is invalid, ``x-batch-validation: permissive``
  queues the valid ones and returns ``errors[{index,message}]``;
* ``Idempotency-Key`` (<= 256 chars, kept 24 h, per endpoint and API key): the
  same key and body replays the original answer and records nothing; the
  same key with another body -> 409 ``invalid_idempotent_request``; while the
  first request is still being processed -> 409 ``concurrent_idempotent_requests``;
  an empty or too-long key -> 400 ``invalid_idempotency_key``.  Only 2xx
  answers are kept (so a retried 429/5xx runs again);
* every answer has ``ratelimit-limit``, ``ratelimit-remaining``,
  ``ratelimit-reset`` (seconds); 429 ``rate_limit_exceeded`` adds ``retry-after``.
  ``--resend-rps N`` (or keys ``resend.rps``) enforces N requests/s.
* errors ``{"statusCode":N,"name":"...","message":"..."}``; the account's
  quota (resend.com/docs/api-reference/errors) is 429 ``daily_quota_exceeded``
  or ``monthly_quota_exceeded``: a ``status`` fault with that ``error_code``.
"""

import hashlib
import re
import threading
import time

from .base import Provider, Reply, Resp, addr_of, as_list, parse_bearer, valid_email
from mocklib import uuid4

TAG_RE = re.compile(r"^[A-Za-z0-9_\-]{1,256}$")
NAMES = {400: ("validation_error", "Bad request"),
         401: ("missing_api_key", "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY"),
         403: ("invalid_api_Key", "API key is invalid"),
         404: ("not_found", "The requested endpoint does not exist."),
         409: ("invalid_idempotent_request", "Same idempotency key used with a different request payload. Change your idempotency key or payload."),
         422: ("validation_error", "Invalid request"),
         429: ("rate_limit_exceeded", "Too many requests. You can only make 2 requests per second. See rate limit response headers for more information. Or contact support to increase rate limit."),
         500: ("internal_server_error", "An unexpected error occurred, please try again later."),
         503: ("application_error", "Something went wrong while processing your request.")}
IDEM_TTL = 24 * 3600


class Resend(Provider):
    name = "resend"
    routes = [("POST", re.compile(r"^/emails$"), "email"),
              ("POST", re.compile(r"^/emails/batch$"), "batch")]

    def __init__(self, keys=None, options=None):
        super().__init__(keys, options)
        self.lock = threading.Lock()
        self.idem = {}
        self.window = (0, 0)   # (second, count)

    def reset(self):
        with self.lock:
            self.idem = {}
            self.window = (0, 0)

    # rate limit -----------------------------------------------------------
    def _rps(self):
        return int(self.option("rps", 0) or 0)

    def _rl_headers(self, remaining=None, reset=1):
        limit = self._rps() or 1000
        if remaining is None:
            sec, n = self.window
            remaining = max(0, limit - n) if sec == int(time.time()) else limit
        return [("ratelimit-limit", str(limit)), ("ratelimit-remaining", str(remaining)),
                ("ratelimit-reset", str(reset))]

    def error(self, status, message=None, retry_after=None, code=None):
        name, dmsg = NAMES.get(status, ("application_error", "error"))
        headers = []
        if status == 429:
            ra = int(retry_after if retry_after is not None else 1)
            headers = self._rl_headers(0, ra) + [("retry-after", str(ra))]
        else:
            headers = self._rl_headers()
            headers += self.retry_after_headers(retry_after)
        return Resp(status, {"statusCode": status, "name": code or name, "message": message or dmsg}, headers)

    def authenticate(self, req):
        tok = parse_bearer(req)
        if not tok:
            raise Reply(self.error(401))
        keys = self.key_list()
        if keys is None:
            return "unchecked"
        if tok not in keys:
            raise Reply(self.error(403))
        return "ok"

    # idempotency -----------------------------------------------------------
    def begin(self, req, route):
        """Rate limit and idempotency check, before faults and processing."""
        rps = self._rps()
        if rps:
            with self.lock:
                sec, n = self.window
                now = int(time.time())
                if sec != now:
                    sec, n = now, 0
                n += 1
                self.window = (sec, n)
            if n > rps:
                raise Reply(self.error(429, retry_after=1))
        key = req.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not key or len(key) > 256:
            raise Reply(self.error(400, "The key must be between 1-256 chars.", code="invalid_idempotency_key"))
        slot = (parse_bearer(req), req.path, key)
        digest = hashlib.sha256(req.body).hexdigest()
        now = time.time()
        with self.lock:
            e = self.idem.get(slot)
            if e and now - e["ts"] > IDEM_TTL:
                e = None
            if e is None:
                self.idem[slot] = {"ts": now, "hash": digest, "state": "in_progress", "resp": None}
                req.idem_slot = slot
                return None
            if e["hash"] != digest:
                raise Reply(self.error(409, code="invalid_idempotent_request"))
            if e["state"] == "in_progress":
                raise Reply(self.error(409, "Same idempotency key used while original request is still in progress. Try the request again later.",
                                       code="concurrent_idempotent_requests"))
            st, body, headers = e["resp"]
        req.idem_replay = True
        return Resp(st, body, headers)

    def finish(self, req, route, resp):
        slot = getattr(req, "idem_slot", None)
        if slot is None:
            return
        with self.lock:
            if resp is not None and 200 <= resp.status < 300:
                self.idem[slot].update(state="done", resp=(resp.status, resp.body, resp.headers))
            else:
                self.idem.pop(slot, None)

    # sending ------------------------------------------------------------------
    def _items(self, req, route):
        b = req.json()
        return b if route.name == "batch" else [b]

    def recipients(self, req, route):
        try:
            out = []
            for m in self._items(req, route):
                for k in ("to", "cc", "bcc"):
                    out += [addr_of(a) for a in as_list(m.get(k))]
            return out
        except Exception:
            return []

    def _validate(self, m):
        if not isinstance(m, dict):
            return ("validation_error", "Invalid email object.")
        for f in ("from", "to", "subject"):
            if not m.get(f):
                return ("missing_required_field", "Missing `%s` field." % f)
        if not valid_email(m["from"]):
            return ("validation_error", "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.")
        to = as_list(m.get("to"))
        if len(to) > 50:
            return ("validation_error", "Too many recipients in `to`. The maximum is 50.")
        for k in ("to", "cc", "bcc"):
            for a in as_list(m.get(k)):
                if not valid_email(a):
                    return ("validation_error", "Invalid `%s` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format." % k)
        if not (m.get("html") or m.get("text") or m.get("react") or m.get("template")):
            return ("validation_error", "Missing `html` or `text` field.")
        h = m.get("headers") or {}
        if not isinstance(h, dict) or any(not isinstance(v, str) for v in h.values()):
            return ("validation_error", "`headers` must be an object of strings.")
        for t in m.get("tags") or []:
            if not isinstance(t, dict) or not TAG_RE.match(str(t.get("name", ""))) or not TAG_RE.match(str(t.get("value", ""))):
                return ("validation_error", "Tags should only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-), and can't exceed 256 characters.")
        return None

    def _record(self, req, m, ctx, idx):
        mid = uuid4()
        tags = {t["name"]: t["value"] for t in m.get("tags") or []}
        for k in ("to", "cc", "bcc"):
            for a in as_list(m.get(k)):
                ctx.record({"recipient": addr_of(a), "recipient_kind": k, "from": m["from"],
                            "subject": m.get("subject"), "headers": m.get("headers") or {},
                            "html": m.get("html"), "text": m.get("text"),
                            "carried": {"tags": tags,
                                        "Idempotency-Key": req.headers.get("Idempotency-Key")},
                            "idempotency_key": req.headers.get("Idempotency-Key"),
                            "batch_index": idx, "scheduled_at": m.get("scheduled_at"),
                            "provider_message_id": mid})
        return mid

    def handle(self, req, route, ctx):
        try:
            items = self._items(req, route)
        except ValueError:
            raise Reply(self.error(422, "Invalid JSON body.", code="validation_error"))
        if route.name == "email":
            m = items[0]
            err = self._validate(m)
            if err:
                raise Reply(self.error(422, err[1], code=err[0]))
            rule = ctx.msg_fault([addr_of(a) for a in as_list(m.get("to"))])
            if rule is not None:
                raise Reply(self.error(rule.status or 422, rule.message or "Invalid `to` field.",
                                       code=rule.error_code or "validation_error"))
            mid = self._record(req, m, ctx, None)
            return Resp(200, {"id": mid}, self._rl_headers())
        if not isinstance(items, list):
            raise Reply(self.error(422, "The batch endpoint expects an array of emails.", code="validation_error"))
        if not items:
            raise Reply(self.error(422, "The batch must contain at least 1 email.", code="validation_error"))
        if len(items) > 100:
            raise Reply(self.error(422, "Too many emails in the batch. The maximum is 100.", code="validation_error"))
        permissive = (req.headers.get("x-batch-validation") or "strict").lower() == "permissive"
        errs = []
        for i, m in enumerate(items):
            err = self._validate(m)
            if err is None:
                rule = ctx.msg_fault([addr_of(a) for a in as_list(m.get("to"))])
                if rule is not None:
                    err = (rule.error_code or "validation_error", rule.message or "Invalid `to` field.")
            if err:
                errs.append((i, err))
        if errs and not permissive:
            i, err = errs[0]
            raise Reply(self.error(422, "emails[%d]: %s" % (i, err[1]), code=err[0]))
        bad = {i for i, _e in errs}
        data = [{"id": self._record(req, m, ctx, i)} for i, m in enumerate(items) if i not in bad]
        body = {"data": data}
        if permissive:
            body["errors"] = [{"index": i, "message": e[1]} for i, e in errs]
        return Resp(200, body, self._rl_headers())
