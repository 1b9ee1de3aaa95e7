"""Brevo (Sendinblue) transactional mock: ``POST /v3/smtp/email``.

Not in the engine's first provider list, but in reference/esp-apis.md (and
its section 6 checklist: "429 without Retry-After"):
* auth ``api-key: <key>``; missing/wrong -> 401 ``{"code":"unauthorized","message":"Key not found"}``;
* body ``sender{name,email}``, ``to[{email,name}]``, ``cc``, ``bcc``, ``subject``,
  ``htmlContent``/``textContent``, ``headers{}`` (``idempotencyKey`` inside,
  TTL 30 min), ``tags[]``, ``params``, ``messageVersions[]`` (<= 1000);
* success 201 ``{"messageId":"<...>"}`` or ``{"messageIds":[...]}`` with versions;
* 429 carries ``x-sib-ratelimit-limit/remaining/reset`` and **no Retry-After**;
* errors ``{"code":"invalid_parameter"|"missing_parameter"|...,"message":...}``.
"""

import re

from .base import Provider, Reply, Resp, valid_email
from mocklib import hex_id


class Brevo(Provider):
    name = "brevo"
    routes = [("POST", re.compile(r"^/v3/smtp/email$"), "email")]

    def error(self, status, message=None, retry_after=None, code=None):
        defaults = {400: ("invalid_parameter", "Invalid parameter"), 401: ("unauthorized", "Key not found"),
                    402: ("not_enough_credits", "Not enough credits"),
                    403: ("permission_denied", "Permission denied"),
                    429: ("too_many_requests", "Too many requests"),
                    500: ("internal_error", "Internal error"), 503: ("internal_error", "Service unavailable")}
        dcode, dmsg = defaults.get(status, ("internal_error", "error"))
        headers = []
        if status == 429:
            headers = [("x-sib-ratelimit-limit", "1000"), ("x-sib-ratelimit-remaining", "0"),
                       ("x-sib-ratelimit-reset", str(int(retry_after if retry_after is not None else 1)))]
        return Resp(status, {"code": code or dcode, "message": message or dmsg}, headers)

    def authenticate(self, req):
        key = req.headers.get("api-key")
        if not key:
            raise Reply(self.error(401, "Key not found"))
        keys = self.key_list()
        if keys is None:
            return "unchecked"
        if key not in keys:
            raise Reply(self.error(401, "Key not found"))
        return "ok"

    def recipients(self, req, route):
        try:
            b = req.json()
            out = [x.get("email") for x in b.get("to") or []]
            for v in b.get("messageVersions") or []:
                out += [x.get("email") for x in v.get("to") or []]
            return out
        except Exception:
            return []

    def handle(self, req, route, ctx):
        try:
            b = req.json()
            if not isinstance(b, dict):
                raise ValueError
        except ValueError:
            raise Reply(self.error(400, "Input must be a valid JSON object", code="bad_request"))
        s = b.get("sender")
        if not isinstance(s, dict) or not valid_email(s.get("email")):
            raise Reply(self.error(400, "sender is missing", code="missing_parameter"))
        if not (b.get("htmlContent") or b.get("textContent") or b.get("templateId")):
            raise Reply(self.error(400, "htmlContent is missing", code="missing_parameter"))
        versions = b.get("messageVersions")
        if versions is not None:
            if not isinstance(versions, list) or not versions or len(versions) > 1000:
                raise Reply(self.error(400, "messageVersions must contain 1 to 1000 versions"))
        else:
            versions = [{}]
        hdrs = b.get("headers") or {}
        ids = []
        for v in versions:
            to = v.get("to") or b.get("to")
            if not to:
                raise Reply(self.error(400, "to is missing", code="missing_parameter"))
            for r in to:
                if not valid_email((r or {}).get("email")):
                    raise Reply(self.error(400, "email is not valid in to", code="invalid_parameter"))
            rule = ctx.msg_fault([r["email"] for r in to])
            if rule is not None:
                raise Reply(self.error(rule.status or 400, rule.message or "email is blocked", code=rule.error_code))
            mid = "<%s.%s@smtp-relay.mailin.fr>" % (hex_id(12), hex_id(8))
            ids.append(mid)
            h = dict(hdrs)
            h.update(v.get("headers") or {})
            for r in to:
                ctx.record({"recipient": r["email"], "from": s["email"], "subject": v.get("subject") or b.get("subject"),
                            "headers": h, "html": v.get("htmlContent") or b.get("htmlContent"),
                            "text": v.get("textContent") or b.get("textContent"),
                            "carried": {"params": v.get("params") or b.get("params") or {},
                                        "headers": h},
                            "idempotency_key": h.get("idempotencyKey"),
                            "tags": b.get("tags"), "provider_message_id": mid})
        if b.get("messageVersions") is not None:
            return Resp(201, {"messageIds": ids})
        return Resp(201, {"messageId": ids[0]})
