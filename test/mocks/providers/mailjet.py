"""Mailjet Send API v3.1 mock: ``POST /v3.1/send``.

Follows reference/esp-apis.md, Mailjet table:
* auth Basic ``API_KEY:SECRET_KEY``; missing/wrong -> 401 with Mailjet's
  "API key authentication/authorization failure" body;
* body ``{"Messages":[{From{Email,Name}, To[{Email,Name}], Cc, Bcc, Subject,
  TextPart, HTMLPart, Headers{}, CustomID, EventPayload, CustomCampaign}],
  "SandboxMode":bool}``; <= 50 messages per call;
* response ``{"Messages":[{"Status":"success"|"error","CustomID",
  "To":[{"Email","MessageUUID","MessageID","MessageHref"}], "Errors":[...]}]}``,
  per message, in order.  Processing does not stop at a failed message;
  the HTTP status is 200 when every message succeeded and 400 when any failed
  (the body then still lists the successful ones: retry only the failed entries);
* request-level errors ``{"ErrorIdentifier","ErrorCode","StatusCode","ErrorMessage"}``;
  429 "maximum number of calls allowed per minute".
"""

import re

from .base import Provider, Reply, Resp, parse_basic, valid_email
from mocklib import next_seq, uuid4

AUTH_MSG = ("API key authentication/authorization failure. You may be unauthorized to access the API "
            "or your API key may be expired. Visit API keys management section to check your keys.")


class Mailjet(Provider):
    name = "mailjet"
    routes = [("POST", re.compile(r"^/v3\.1/send$"), "send")]

    def error(self, status, message=None, retry_after=None, code=None):
        defaults = {400: ("mj-0002", "Malformed JSON, please review the syntax and properties types."),
                    401: (None, AUTH_MSG),
                    429: ("mj-0014", "You have reached the maximum number of calls allowed per minute."),
                    500: ("mj-0001", "Internal Server Error"), 503: ("mj-0001", "Service Unavailable")}
        dcode, dmsg = defaults.get(status, ("mj-0001", "error"))
        body = {"ErrorIdentifier": uuid4(), "StatusCode": status, "ErrorMessage": message or dmsg}
        if code or dcode:
            body["ErrorCode"] = code or dcode
        return Resp(status, body, self.retry_after_headers(retry_after))

    def authenticate(self, req):
        cred = parse_basic(req)
        if not cred or not cred[0] or not cred[1]:
            raise Reply(self.error(401))
        keys = self.key_list()
        if keys is None:
            return "unchecked"
        if "%s:%s" % cred not in keys:
            raise Reply(self.error(401))
        return "ok"

    def recipients(self, req, route):
        try:
            out = []
            for m in req.json().get("Messages") or []:
                for k in ("To", "Cc", "Bcc"):
                    out += [x.get("Email") for x in m.get(k) or []]
            return out
        except Exception:
            return []

    @staticmethod
    def _err(code, msg, related, status=400):
        return {"ErrorIdentifier": uuid4(), "ErrorCode": code, "StatusCode": status,
                "ErrorMessage": msg, "ErrorRelatedTo": related}

    def _validate(self, m):
        errs = []
        if not isinstance(m, dict):
            return [self._err("mj-0003", "Message must be an object", [])]
        frm = m.get("From")
        if not isinstance(frm, dict) or not valid_email(frm.get("Email")):
            errs.append(self._err("mj-0013", "\"%s\" is an invalid email address." % ((frm or {}).get("Email") if isinstance(frm, dict) else frm), ["From.Email"]))
        if not m.get("To"):
            errs.append(self._err("mj-0003", "Missing mandatory property.", ["To"]))
        for k in ("To", "Cc", "Bcc"):
            for i, r in enumerate(m.get(k) or []):
                if not isinstance(r, dict) or not valid_email(r.get("Email")):
                    errs.append(self._err("mj-0013", "\"%s\" is an invalid email address." % (r.get("Email") if isinstance(r, dict) else r), ["%s[%d].Email" % (k, i)]))
        if not (m.get("TextPart") or m.get("HTMLPart") or m.get("TemplateID")):
            errs.append(self._err("send-0003", "At least \"HTMLPart\", \"TextPart\" or \"TemplateID\" must be provided.", ["HTMLPart", "TextPart"]))
        if m.get("Subject") is None and not m.get("TemplateID"):
            errs.append(self._err("send-0004", "Missing mandatory property \"Subject\".", ["Subject"]))
        h = m.get("Headers") or {}
        if not isinstance(h, dict):
            errs.append(self._err("mj-0004", "Type mismatch. Expected type \"object\".", ["Headers"]))
        cid = m.get("CustomID")
        if cid is not None and (not isinstance(cid, str) or len(cid) > 64):
            errs.append(self._err("mj-0007", "CustomID must be a string of at most 64 characters.", ["CustomID"]))
        return errs

    def handle(self, req, route, ctx):
        try:
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            raise Reply(self.error(400))
        msgs = body.get("Messages")
        if not isinstance(msgs, list) or not msgs:
            raise Reply(self.error(400, "Missing mandatory property \"Messages\".", code="mj-0003"))
        if len(msgs) > 50:
            raise Reply(self.error(400, "Messages array contains %d elements, at most 50 are allowed." % len(msgs), code="send-0001"))
        sandbox = bool(body.get("SandboxMode"))
        out, any_err = [], False
        for m in msgs:
            errs = self._validate(m)
            if not errs:
                rcpts = [r["Email"] for k in ("To", "Cc", "Bcc") for r in m.get(k) or []]
                rule = ctx.msg_fault(rcpts)
                if rule is not None:
                    errs = [self._err(str(rule.error_code or "send-0010"),
                                      rule.message or "Recipient rejected (blocked address).", ["To"],
                                      int(rule.status or 400))]
            if errs:
                any_err = True
                out.append({"Status": "error", "Errors": errs})
                continue
            res = {"Status": "success", "CustomID": m.get("CustomID", ""), "To": [], "Cc": [], "Bcc": []}
            ep = m.get("EventPayload")
            for k in ("To", "Cc", "Bcc"):
                for r in m.get(k) or []:
                    mid = 1152921500000000000 + next_seq()
                    muuid = uuid4()
                    res[k].append({"Email": r["Email"], "MessageUUID": muuid, "MessageID": mid,
                                   "MessageHref": "https://api.mailjet.com/v3/REST/message/%d" % mid})
                    ctx.record({"recipient": r["Email"], "recipient_kind": k,
                                "from": m["From"]["Email"], "from_name": m["From"].get("Name"),
                                "subject": m.get("Subject"), "headers": m.get("Headers") or {},
                                "text": m.get("TextPart"), "html": m.get("HTMLPart"),
                                "carried": {"CustomID": m.get("CustomID"), "EventPayload": ep},
                                "custom_campaign": m.get("CustomCampaign"),
                                "sandbox": sandbox,
                                "provider_message_id": str(mid), "provider_message_uuid": muuid})
            out.append(res)
        return Resp(400 if any_err else 200, {"Messages": out})
