"""SendGrid v3 Mail Send mock: ``POST /v3/mail/send``.

Follows reference/esp-apis.md, SendGrid table:
* auth ``Authorization: Bearer <API_KEY>``; missing -> 401 "authorization required",
  wrong -> 401 "The provided authorization grant is invalid, expired, or revoked";
* body: ``personalizations[]`` (1..1000, each with ``to[]``; <=1000 recipients
  to+cc+bcc in total; an address may appear only once), ``from.email``,
  ``subject`` (root or in every personalization), ``content[]`` with
  text/plain first then text/html (SendGrid's own error text), ``headers{}``,
  ``custom_args{}`` (string values, total <= 10,000 bytes; personalization
  values override root values);
* success: ``202 Accepted``, empty body, id in the ``X-Message-Id`` header;
* errors: ``{"errors":[{"message","field","help"}]}``; 400 validation, 401, 413
  payload too large (30 MB), 429 ``too many requests`` with
  ``X-RateLimit-Limit/Remaining/Reset`` (Reset = Unix timestamp, no Retry-After);
  an account out of credits answers 401 ``Maximum credits exceeded`` (the
  mail-send errors page): a ``status`` fault with that message;
* signed Event Webhook (``POST /_mock/sendgrid/events``): the events as
  SendGrid posts them, signed as SendGrid documents: ECDSA P-256 with SHA-256
  over ``timestamp + body``, the base64 DER signature in
  ``X-Twilio-Email-Event-Webhook-Signature``, the timestamp in
  ``X-Twilio-Email-Event-Webhook-Timestamp``, and the verification key as
  SendGrid shows it (base64 of the DER SubjectPublicKeyInfo).
"""

import json
import re

from .base import Provider, Reply, Resp, as_list, parse_bearer, unix_now, valid_email
from mocklib import hex_id

MAX_BODY = 30 * 1024 * 1024
_SIGNING_KEY = None


def signed_event_post(events, timestamp):
    """body, headers and public key of a signed Event Webhook POST."""
    global _SIGNING_KEY
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    if _SIGNING_KEY is None:
        _SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
    body = json.dumps(events, separators=(",", ":"))
    sig = _SIGNING_KEY.sign((str(timestamp) + body).encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    pub = _SIGNING_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"body": body,
            "headers": {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                        "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp)},
            "public_key": base64.b64encode(pub).decode()}
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to",
                    "cc", "bcc"}
DEFAULT_MSG = {400: "Bad Request", 401: "authorization required", 403: "access forbidden",
               404: "Not Found", 413: "Payload Too Large", 429: "too many requests",
               500: "internal server error", 503: "Service Unavailable"}


class SendGrid(Provider):
    name = "sendgrid"
    routes = [("POST", re.compile(r"^/v3/mail/send$"), "send")]

    def error(self, status, message=None, retry_after=None, code=None, field=None, help=None):
        body = {"errors": [{"message": message or DEFAULT_MSG.get(status, "error"),
                            "field": field, "help": help}]}
        headers = []
        if status == 429:
            reset = unix_now() + int(retry_after if retry_after is not None else 1)
            headers = [("X-RateLimit-Limit", "600"), ("X-RateLimit-Remaining", "0"),
                       ("X-RateLimit-Reset", str(reset))]
        return Resp(status, body, headers)

    def bad(self, message, field=None):
        raise Reply(self.error(400, message, field=field))

    def authenticate(self, req):
        tok = parse_bearer(req)
        if not tok:
            raise Reply(self.error(401, "authorization required"))
        keys = self.key_list()
        if keys is None:
            return "unchecked"
        if tok not in keys:
            raise Reply(self.error(401, "The provided authorization grant is invalid, expired, or revoked"))
        return "ok"

    def recipients(self, req, route):
        try:
            out = []
            for p in req.json().get("personalizations") or []:
                for k in ("to", "cc", "bcc"):
                    out += [x.get("email") for x in p.get(k) or [] if isinstance(x, dict)]
            return out
        except Exception:
            return []

    def handle(self, req, route, ctx):
        if len(req.body) > MAX_BODY:
            raise Reply(self.error(413, "Payload Too Large"))
        try:
            body = req.json()
        except ValueError:
            self.bad("Bad Request", None)
        if not isinstance(body, dict):
            self.bad("Bad Request")
        pers = body.get("personalizations")
        if not isinstance(pers, list) or not pers:
            self.bad("The personalizations field is required and must have at least one personalization.",
                     "personalizations")
        if len(pers) > 1000:
            self.bad("The personalizations field must have no more than 1000 personalizations.",
                     "personalizations")
        frm = body.get("from")
        if not isinstance(frm, dict) or not frm.get("email"):
            self.bad("The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.", "from")
        if not valid_email(frm["email"]):
            self.bad("The from email does not contain a valid address.", "from.email")
        content = body.get("content")
        if not body.get("template_id"):
            if not isinstance(content, list) or not content:
                self.bad("Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.", "content")
            types = []
            for i, c in enumerate(content):
                if not isinstance(c, dict) or not c.get("type") or not isinstance(c.get("value"), str) or c["value"] == "":
                    self.bad("The content value must be a string at least one character in length.",
                             "content.%d.value" % i)
                types.append(c["type"].lower())
            if "text/plain" in types and types.index("text/plain") != 0:
                self.bad("If present, text/plain content must be first, followed by text/html, and then any other content.", "content")
            if "text/html" in types and "text/plain" in types and types.index("text/html") != 1:
                self.bad("If present, text/plain content must be first, followed by text/html, and then any other content.", "content")
        root_headers = body.get("headers") or {}
        self._check_headers(root_headers, "headers")
        root_args = body.get("custom_args") or {}
        self._check_args(root_args, "custom_args")
        seen = set()
        total = 0
        for i, p in enumerate(pers):
            if not isinstance(p, dict):
                self.bad("Invalid type. Expected: object, given: %s." % type(p).__name__, "personalizations.%d" % i)
            if not p.get("to"):
                self.bad("The to array is required for all personalization objects, and must have at least one email object with a valid email address.", "personalizations.%d.to" % i)
            for k in ("to", "cc", "bcc"):
                for j, a in enumerate(as_list(p.get(k))):
                    em = (a or {}).get("email") if isinstance(a, dict) else None
                    if not valid_email(em):
                        self.bad("Does not contain a valid address.", "personalizations.%d.%s.%d.email" % (i, k, j))
                    if em.lower() in seen:
                        self.bad("Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [%s] in the personalizations.%d.%s field." % (em, i, k), "personalizations.%d.%s" % (i, k))
                    seen.add(em.lower())
                    total += 1
            if not (p.get("subject") or body.get("subject") or body.get("template_id")):
                self.bad("The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.", "subject")
            self._check_headers(p.get("headers") or {}, "personalizations.%d.headers" % i)
            self._check_args(p.get("custom_args") or {}, "personalizations.%d.custom_args" % i)
            merged = dict(root_args)
            merged.update(p.get("custom_args") or {})
            if len(json.dumps(merged).encode()) > 10000:
                self.bad("The custom_args combined size may not exceed 10,000 bytes.", "personalizations.%d.custom_args" % i)
        if total > 1000:
            self.bad("The total number of recipients must be no more than 1000. This includes all recipients defined within the to, cc, and bcc parameters, across each object that you include in the personalizations array.", "personalizations")

        # per-message errors: SendGrid has no per-recipient status in the API;
        # a rejected recipient makes the whole request a 400.
        rule = ctx.msg_fault(self.recipients(req, route))
        if rule is not None:
            raise Reply(self.error(rule.status or 400, rule.message or "Does not contain a valid address.",
                                   field="personalizations.0.to.0.email"))

        msg_id = hex_id(22)
        text = html = None
        for c in content or []:
            if c["type"].lower() == "text/plain" and text is None:
                text = c["value"]
            elif c["type"].lower() == "text/html" and html is None:
                html = c["value"]
        for p in pers:
            headers = dict(root_headers)
            headers.update(p.get("headers") or {})
            args = dict(root_args)
            args.update(p.get("custom_args") or {})
            subj = p.get("subject") or body.get("subject")
            subs = p.get("substitutions") or {}

            def sub(s):
                if s is None:
                    return None
                for k, v in subs.items():
                    s = s.replace(k, str(v))
                return s
            for k in ("to", "cc", "bcc"):
                for a in as_list(p.get(k)):
                    ctx.record({
                        "recipient": a["email"], "recipient_kind": k,
                        "from": frm.get("email"), "from_name": frm.get("name"),
                        "subject": sub(subj), "headers": headers,
                        "text": sub(text), "html": sub(html),
                        "content_types": [c.get("type") for c in content or []],
                        "carried": {"custom_args": args},
                        "categories": body.get("categories"),
                        "provider_message_id": msg_id,
                    })
        return Resp(202, b"", [("X-Message-Id", msg_id)])

    def _check_headers(self, headers, field):
        if not isinstance(headers, dict):
            self.bad("Invalid type. Expected: object.", field)
        for k, v in headers.items():
            if k.lower() in RESERVED_HEADERS:
                self.bad("The following header is reserved and cannot be used: %s" % k, field)
            if not isinstance(v, str):
                self.bad("Invalid type. Expected: string, given: %s." % type(v).__name__, "%s.%s" % (field, k))

    def _check_args(self, args, field):
        if not isinstance(args, dict):
            self.bad("Invalid type. Expected: object.", field)
        for k, v in args.items():
            if not isinstance(v, str):
                self.bad("Invalid type. Expected: string, given: %s." % type(v).__name__, "%s.%s" % (field, k))
