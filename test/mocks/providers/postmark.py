"""Postmark mock: ``POST /email`` and ``POST /email/batch``.

Follows reference/esp-apis.md, Postmark table:
* auth ``X-Postmark-Server-Token``; missing or unknown -> 401
  ``{"ErrorCode":10,"Message":"..."}``; ``POSTMARK_API_TEST`` validates without
  delivering (the message is recorded with ``test_mode: true``);
* body ``From``, ``To`` (comma-separated), ``Cc``, ``Bcc``, ``Subject``,
  ``HtmlBody``/``TextBody`` (one required), ``Headers[{Name,Value}]``, ``Tag``,
  ``Metadata{}``, ``MessageStream``; <= 50 recipients per message;
* ``/email`` success 200 ``{"To","SubmittedAt","MessageID","ErrorCode":0,"Message":"OK"}``,
  errors 422 ``{"ErrorCode":N,"Message":...}`` (300 invalid request, 406
  inactive recipient);
* ``/email/batch``: JSON array of <= 500 messages; **always 200**, one result per
  message in request order carrying ``ErrorCode``/``Message``/``MessageID``.
  More than 500 -> 422 ErrorCode 410 "Too many batch messages";
* inactive recipients (keys file ``postmark.inactive``) get ErrorCode 406;
* account states from Postmark's ErrorCode table (api/overview#error-codes),
  answered as HTTP 422 with the ErrorCode through a ``status`` fault with
  ``error_code``: 405 not allowed to send (out of credits), 412 account
  pending, 413 account may not send, and codes >= 1000 such as 1226 (message
  stream not found), which are Postmark's numbers, not HTTP statuses;
* webhooks (``POST /_mock/postmark/webhook``): for a recorded message, the
  payload Postmark posts, shaped as documented: on a Broadcast stream a
  spam complaint or a hard bounce arrives as a ``SubscriptionChange`` with
  ``SuppressSending: true`` and ``SuppressionReason`` ``SpamComplaint`` or
  ``HardBounce`` (postmarkapp.com/developer/webhooks/subscription-change-webhook),
  not as a SpamComplaint or Bounce webhook.
"""

import re

from .base import Provider, Reply, Resp, addr_of, split_addresses, valid_email
from mocklib import iso_now, uuid4

INACTIVE_MSG = ("You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                "addresses: %s. Inactive recipients are ones that have generated a hard bounce, a "
                "spam complaint, or a manual suppression.")


class Invalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Postmark(Provider):
    name = "postmark"
    routes = [("POST", re.compile(r"^/email$"), "email"),
              ("POST", re.compile(r"^/email/batch$"), "batch")]

    def error(self, status, message=None, retry_after=None, code=None):
        defaults = {401: (10, "Request does not contain a valid Server token."),
                    404: (404, "Not found"),
                    413: (300, "Request too large"),
                    422: (300, "Invalid email request"),
                    429: (429, "Rate limit exceeded"),
                    500: (500, "Internal Server Error"),
                    503: (503, "Service unavailable")}
        dcode, dmsg = defaults.get(status, (status, "Error"))
        return Resp(status, {"ErrorCode": int(code if code is not None else dcode),
                             "Message": message or dmsg},
                    self.retry_after_headers(retry_after))

    def authenticate(self, req):
        tok = req.header("X-Postmark-Server-Token")
        if not tok:
            raise Reply(self.error(401, "Request does not contain a valid Server token."))
        if tok == "POSTMARK_API_TEST":
            return "test_token"
        keys = self.key_list("tokens")
        if keys is None:
            return "unchecked"
        if tok not in keys:
            raise Reply(self.error(401, "Request does not contain a valid Server token."))
        return "ok"

    def _msgs(self, req, route):
        data = req.json()
        return data if route.name == "batch" else [data]

    def recipients(self, req, route):
        try:
            out = []
            for m in self._msgs(req, route):
                for k in ("To", "Cc", "Bcc"):
                    out += [addr_of(a) for a in split_addresses(m.get(k) or "")]
            return out
        except Exception:
            return []

    def _validate(self, m):
        if not isinstance(m, dict):
            raise Invalid(300, "Invalid email request")
        if not m.get("From"):
            raise Invalid(300, "Invalid 'From' address: ''.")
        if not valid_email(m["From"]):
            raise Invalid(300, "Invalid 'From' address: '%s'." % m["From"])
        rcpts = []
        for k in ("To", "Cc", "Bcc"):
            for a in split_addresses(m.get(k) or ""):
                if not valid_email(a):
                    raise Invalid(300, "Error parsing '%s': Illegal email address '%s'. It must contain the '@' symbol." % (k, a))
                rcpts.append(addr_of(a))
        if not rcpts:
            raise Invalid(300, "Zero recipients specified")
        if len(rcpts) > 50:
            raise Invalid(300, "Maximum of 50 recipients allowed per message (To, Cc and Bcc).")
        if not m.get("HtmlBody") and not m.get("TextBody") and not m.get("TemplateId") and not m.get("TemplateAlias"):
            raise Invalid(300, "Provide either email TextBody or HtmlBody or both.")
        hdrs = m.get("Headers") or []
        if not isinstance(hdrs, list) or any(not isinstance(h, dict) or "Name" not in h for h in hdrs):
            raise Invalid(300, "Headers must be an array of {Name, Value} objects.")
        md = m.get("Metadata")
        if md is not None and not isinstance(md, dict):
            raise Invalid(300, "Metadata must be an object.")
        return rcpts

    def _one(self, m, ctx, auth):
        """Validate and record one message; return its result object (never raises)."""
        try:
            rcpts = self._validate(m)
        except Invalid as e:
            return {"ErrorCode": e.code, "Message": e.message}
        inactive = {a.lower() for a in (self.option("inactive") or [])}
        bad = [a for a in rcpts if a.lower() in inactive]
        if bad:
            return {"ErrorCode": 406, "Message": INACTIVE_MSG % ", ".join(bad), "To": m.get("To")}
        rule = ctx.msg_fault(rcpts)
        if rule is not None:
            code = int(rule.error_code if rule.error_code is not None else 406)
            msg = rule.message or (INACTIVE_MSG % ", ".join(rcpts) if code == 406 else "Invalid email request")
            return {"ErrorCode": code, "Message": msg, "To": m.get("To")}
        mid = uuid4()
        headers = {h["Name"]: h.get("Value") for h in m.get("Headers") or []}
        for a in rcpts:
            ctx.record({"recipient": a, "from": m.get("From"), "subject": m.get("Subject"),
                        "headers": headers, "html": m.get("HtmlBody"), "text": m.get("TextBody"),
                        "carried": {"Metadata": m.get("Metadata") or {}},
                        "tag": m.get("Tag"), "message_stream": m.get("MessageStream") or "outbound",
                        "test_mode": auth == "test_token",
                        "provider_message_id": mid})
        return {"To": m.get("To"), "SubmittedAt": iso_now(), "MessageID": mid,
                "ErrorCode": 0, "Message": "OK"}

    def handle(self, req, route, ctx):
        if "json" not in req.content_type:
            raise Reply(self.error(422, "JSON required", code=409))
        try:
            data = req.json()
        except ValueError:
            raise Reply(self.error(422, "Invalid JSON", code=402))
        if route.name == "batch":
            if not isinstance(data, list):
                raise Reply(self.error(422, "Incompatible JSON: the batch endpoint expects an array of messages.", code=403))
            if len(data) > 500:
                raise Reply(self.error(422, "Too many batch messages. Max is 500, got %d." % len(data), code=410))
            return Resp(200, [self._one(m, ctx, ctx.auth) for m in data])
        res = self._one(data, ctx, ctx.auth)
        if res["ErrorCode"] != 0:
            return Resp(422, {"ErrorCode": res["ErrorCode"], "Message": res["Message"]})
        return Resp(200, res)


def webhook(rec, kind):
    """The webhook Postmark sends about a recorded message: kind is
    ``complaint`` or ``hard_bounce`` (a SubscriptionChange on Broadcast
    streams, as Postmark documents), or ``manual`` (the recipient's own
    unsubscribe)."""
    reason = {"complaint": "SpamComplaint", "hard_bounce": "HardBounce", "manual": "ManualSuppression"}[kind]
    return {"RecordType": "SubscriptionChange", "MessageID": rec.get("provider_message_id"),
            "ServerID": 23, "MessageStream": rec.get("message_stream") or "broadcast",
            "ChangedAt": iso_now(), "Recipient": rec.get("recipient"),
            "Origin": "Recipient" if kind != "hard_bounce" else "Customer",
            "SuppressSending": True, "SuppressionReason": reason, "Tag": "",
            "Metadata": (rec.get("carried") or {}).get("Metadata") or {}}
