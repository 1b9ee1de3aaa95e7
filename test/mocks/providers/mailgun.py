"""Mailgun Messages mock: ``POST /v3/{domain}/messages`` and ``/v3/{domain}/messages.mime``.

Follows reference/esp-apis.md, Mailgun table:
* auth HTTP Basic ``api:<API_KEY>``; missing or wrong -> ``401`` with the plain
  text body ``Forbidden`` (what api.mailgun.net answers);
* body multipart/form-data or application/x-www-form-urlencoded: ``from``,
  ``to`` (repeatable, each may be a comma list), ``cc``, ``bcc``, ``subject``,
  ``text``, ``html``, ``h:<Header>``, ``v:<var>``, ``o:*``,
  ``recipient-variables`` (JSON keyed by address); ``%recipient.x%`` is
  substituted per recipient (batch sending);
* batch: <= 1000 recipients per call;
* ``messages.mime``: the ``message`` file field holds the raw MIME, ``to`` the envelope;
* success 200 ``{"id":"<...@domain>","message":"Queued. Thank you."}``;
* errors 400 ``{"message":"..."}``; 404 ``{"message":"Domain not found: x"}``
  when the keys file lists domains; 429 with Retry-After; 25 MB size limit (413);
  recipient-variables over 16 KB (Mailgun support's stated limit) -> 413.
"""

import json
import re
import time

from .base import Provider, Reply, Resp, addr_of, parse_basic, split_addresses, valid_email
from mocklib import hex_id, parse_mime

MAX_BODY = 25 * 1024 * 1024
# Mailgun support: "The maximum size of recipient-variables is 16 KB"
MAX_RECIPIENT_VARS = 16 * 1024


class Mailgun(Provider):
    name = "mailgun"
    routes = [("POST", re.compile(r"^/v3/(?P<domain>[^/]+)/messages$"), "messages"),
              ("POST", re.compile(r"^/v3/(?P<domain>[^/]+)/messages\.mime$"), "mime")]

    def error(self, status, message=None, retry_after=None, code=None):
        if status == 401:
            return Resp(401, "Forbidden", content_type="text/plain")
        defaults = {400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                    413: "Request Entity Too Large", 429: "Too many requests",
                    500: "Internal Server Error", 503: "Service Unavailable"}
        return Resp(status, {"message": message or defaults.get(status, "error")},
                    self.retry_after_headers(retry_after))

    def authenticate(self, req):
        cred = parse_basic(req)
        if cred is None or cred[0] != "api":
            raise Reply(self.error(401))
        keys = self.key_list()
        if keys is None:
            return "unchecked" if cred[1] else self._forbid()
        if cred[1] not in keys:
            raise Reply(self.error(401))
        return "ok"

    def _forbid(self):
        raise Reply(self.error(401))

    def _fields(self, req):
        try:
            return req.form()
        except ValueError as exc:
            raise Reply(self.error(400, str(exc)))

    def _rcpts(self, fields, name="to"):
        out = []
        for k, v, _f in fields:
            if k == name and isinstance(v, str):
                out += split_addresses(v)
        return out

    def recipients(self, req, route):
        try:
            return [addr_of(x) for x in self._rcpts(req.form())]
        except Exception:
            return []

    def handle(self, req, route, ctx):
        if len(req.body) > MAX_BODY:
            raise Reply(self.error(413))
        domain = route["domain"]
        domains = self.option("domains")
        if domains and domain not in domains:
            raise Reply(self.error(404, "Domain not found: %s" % domain))
        fields = self._fields(req)
        first = {}
        for k, v, f in fields:
            first.setdefault(k, (v, f))
        to = self._rcpts(fields)
        if not to:
            raise Reply(self.error(400, "'to' parameter is missing"))
        for a in to + self._rcpts(fields, "cc") + self._rcpts(fields, "bcc"):
            if not valid_email(a):
                raise Reply(self.error(400, "'to' parameter is not a valid address. please check documentation"))
        n_rcpt = len(to) + len(self._rcpts(fields, "cc")) + len(self._rcpts(fields, "bcc"))
        if n_rcpt > 1000:
            raise Reply(self.error(400, "Too many recipients: maximum is 1000, got %d" % n_rcpt))
        rvars = {}
        if "recipient-variables" in first:
            if len(first["recipient-variables"][0].encode("utf-8")) > MAX_RECIPIENT_VARS:
                raise Reply(self.error(413, "recipient-variables is too large: the limit is 16 KB"))
            try:
                rvars = json.loads(first["recipient-variables"][0])
                if not isinstance(rvars, dict):
                    raise ValueError
            except ValueError:
                raise Reply(self.error(400, "recipient-variables parameter is not a valid JSON"))
        raw = None
        if route.name == "mime":
            if "message" not in first:
                raise Reply(self.error(400, "'message' parameter is missing"))
            raw = first["message"][0]
            if isinstance(raw, str):
                raw = raw.encode()
            parsed = parse_mime(raw)
        else:
            if "from" not in first:
                raise Reply(self.error(400, "'from' parameter is missing"))
            if not valid_email(first["from"][0]):
                raise Reply(self.error(400, "'from' parameter is not a valid address. please check documentation"))
            if not any(k in first for k in ("text", "html", "template", "amp-html")):
                raise Reply(self.error(400, "Need at least one of 'text', 'html' or 'template' parameters specified"))
            if "subject" not in first and "template" not in first:
                raise Reply(self.error(400, "'subject' parameter is missing"))
            parsed = None
        hdrs = {k[2:]: v for k, v, _f in fields if k.startswith("h:")}
        vvars = {k[2:]: v for k, v, _f in fields if k.startswith("v:")}
        opts = {k: v for k, v, _f in fields if k.startswith("o:")}

        # per-recipient rejection: Mailgun answers 400 for the whole call
        rule = ctx.msg_fault([addr_of(x) for x in to])
        if rule is not None:
            raise Reply(self.error(rule.status or 400, rule.message or
                                   "'to' parameter is not a valid address. please check documentation"))

        msg_id = "<%s.%s@%s>" % (time.strftime("%Y%m%d%H%M%S", time.gmtime()), hex_id(16), domain)
        for t in to:
            a = addr_of(t)
            rv = rvars.get(a) or rvars.get(t) or {}

            def sub(s):
                if not isinstance(s, str):
                    return s
                return re.sub(r"%recipient\.([A-Za-z0-9_\-]+)%",
                              lambda m: str(rv.get(m.group(1), "")), s)
            v = {k: sub(x) for k, x in vvars.items()}
            rec = {"recipient": a, "domain": domain,
                   "headers": {k: sub(x) for k, x in hdrs.items()},
                   "carried": {"v": v}, "options": opts,
                   "recipient_variables": rv,
                   "provider_message_id": msg_id,
                   "batch": bool(rvars)}
            if parsed is not None:
                rec.update({"from": parsed.get("from"), "subject": parsed.get("subject"),
                            "text": parsed.get("text"), "html": parsed.get("html"),
                            "raw": raw.decode("utf-8", "replace"),
                            "mime_parts": parsed.get("mime_parts")})
                rec["headers"] = dict(parsed.get("headers") or {}, **rec["headers"])
            else:
                rec.update({"from": first["from"][0], "subject": sub(first.get("subject", (None,))[0]),
                            "text": sub(first.get("text", (None,))[0]),
                            "html": sub(first.get("html", (None,))[0])})
            if v:
                rec["headers"]["X-Mailgun-Variables"] = json.dumps(v)
            ctx.record(rec)
        return Resp(200, {"id": msg_id, "message": "Queued. Thank you."})
