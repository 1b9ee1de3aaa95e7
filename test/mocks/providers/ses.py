"""Amazon SES v2 mock: ``POST /v2/email/outbound-emails`` (SendEmail) and
``POST /v2/email/outbound-bulk-emails`` (SendBulkEmail).

Follows reference/esp-apis.md, SES table and "libcurl SigV4 facts":
* every request must carry a valid AWS SigV4 ``Authorization`` header for
  service **ses** (region checked when the keys file gives one); the signature
  is recomputed here (``sigv4.py``) with the secret from the keys file, the
  signed ``host`` including the port; when a session token is configured the
  request must send a matching (signed) ``X-Amz-Security-Token``.
  Failures answer 403 (400 for malformed headers) with the AWS error type
  (MissingAuthenticationTokenException, UnrecognizedClientException,
  InvalidSignatureException, IncompleteSignatureException);
* SendEmail body: ``FromEmailAddress``, ``Destination{To,Cc,BccAddresses}``
  (<= 50 recipients), ``Content`` with exactly one of ``Simple{Subject,Body{Text,Html},Headers[]}``,
  ``Raw{Data}`` (base64 MIME) or ``Template``; ``EmailTags[{Name,Value}]``
  (ASCII letters, digits, ``_`` and ``-``, <= 256 chars), ``ConfigurationSetName``;
  header names printable ASCII without ``:`` <= 126 chars, values <= 870 chars;
  List-Unsubscribe / List-Unsubscribe-Post at most once.  SES overwrites
  the Message-ID (recorded as ``ses_message_id_header``);
* success 200 ``{"MessageId":"..."}``; SendBulkEmail (<= 50 entries, template
  only) answers ``{"BulkEmailEntryResults":[{"Status","Error","MessageId"}]}``;
* errors: the AWS REST-JSON shape: ``x-amzn-ErrorType: <Name>:`` header and
  ``{"message":"..."}`` body; BadRequestException / MessageRejected 400,
  LimitExceededException 400 (daily quota), TooManyRequestsException 429
  ("Maximum sending rate exceeded."), NotFoundException 404.
"""

import json
import re

from . import sigv4
from .base import Provider, Reply, Resp, addr_of, split_addresses, valid_email
from mocklib import b64decode_strict, hex_id, parse_mime, uuid4

TAG_RE = re.compile(r"^[A-Za-z0-9_\-]{1,256}$")
HNAME_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,126}$")   # printable ASCII except ':'
ONCE = {"list-unsubscribe", "list-unsubscribe-post"}

DEFAULT_ERR = {400: ("BadRequestException", "Bad request"),
               403: ("AccessDeniedException", "User is not authorized to perform this action."),
               404: ("NotFoundException", "Resource not found"),
               413: ("BadRequestException", "Message length is more than 10485760 bytes long."),
               429: ("TooManyRequestsException", "Maximum sending rate exceeded."),
               500: ("InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
               503: ("ServiceUnavailable", "Service is unavailable.")}


def _mid():
    return "0100%s-%s-000000" % (hex_id(12), uuid4())


class SES(Provider):
    name = "ses"
    routes = [("POST", re.compile(r"^/v2/email/outbound-emails$"), "send"),
              ("POST", re.compile(r"^/v2/email/outbound-bulk-emails$"), "bulk")]

    def error(self, status, message=None, retry_after=None, code=None):
        etype, dmsg = DEFAULT_ERR.get(status, ("InternalFailure", "error"))
        etype = code or etype
        headers = [("x-amzn-ErrorType", "%s:" % etype), ("x-amzn-RequestId", uuid4())]
        headers += self.retry_after_headers(retry_after)
        return Resp(status, {"message": message or dmsg}, headers)

    def _credentials(self):
        k = self.keys
        if k is None:
            return None
        entries = k if isinstance(k, list) else [k]
        creds = {}
        for e in entries:
            if isinstance(e, dict):
                creds[e.get("access_key") or e.get("access_key_id")] = {
                    "secret": e.get("secret_key") or e.get("secret_access_key"),
                    "session_token": e.get("session_token")}
        return creds

    def authenticate(self, req):
        region = None
        if isinstance(self.keys, dict):
            region = self.keys.get("region")
        elif isinstance(self.keys, list) and self.keys and isinstance(self.keys[0], dict):
            region = self.keys[0].get("region")
        try:
            res = sigv4.verify(req.method, req.path, req.query_string,
                               lambda n: req.headers.get_all(n) or [], req.body,
                               self._credentials(), service="ses", region=region)
        except sigv4.SigV4Error as e:
            raise Reply(self.error(e.status, e.message, code=e.error_type))
        req.sigv4 = res
        if not res.get("checked"):
            return "unchecked"
        return "sigv4_ok+session_token" if res.get("session_token") else "sigv4_ok"

    def recipients(self, req, route):
        try:
            b = req.json()
            if route.name == "bulk":
                out = []
                for e in b.get("BulkEmailEntries") or []:
                    d = e.get("Destination") or {}
                    for k in ("ToAddresses", "CcAddresses", "BccAddresses"):
                        out += [addr_of(a) for a in d.get(k) or []]
                return out
            d = b.get("Destination") or {}
            return [addr_of(a) for k in ("ToAddresses", "CcAddresses", "BccAddresses")
                    for a in d.get(k) or []]
        except Exception:
            return []

    def bad(self, msg, code="BadRequestException"):
        raise Reply(self.error(400, msg, code=code))

    def _tags(self, tags, field="EmailTags"):
        if tags is None:
            return {}
        if not isinstance(tags, list):
            self.bad("%s must be a list" % field)
        out = {}
        for t in tags:
            if not isinstance(t, dict) or "Name" not in t or "Value" not in t:
                self.bad("Tag must have Name and Value")
            for part in ("Name", "Value"):
                if not TAG_RE.match(str(t[part])):
                    self.bad("Invalid tag %s: '%s'. Tag names and values can only contain ASCII letters (a-z, A-Z), numbers (0-9), underscores (_), or dashes (-), and can be at most 256 characters." % (part.lower(), t[part]))
            out[t["Name"]] = t["Value"]
        return out

    def _check_header_list(self, pairs):
        seen = set()
        for name, value in pairs:
            if not HNAME_RE.match(name or ""):
                self.bad("Invalid header name: '%s'." % name)
            if len(value or "") > 870:
                self.bad("Header value for '%s' is longer than 870 characters." % name)
            ln = name.lower()
            if ln in ONCE and ln in seen:
                self.bad("Duplicate header '%s'." % name, "MessageRejected")
            seen.add(ln)

    def _destination(self, d):
        d = d or {}
        rc = []
        for k in ("ToAddresses", "CcAddresses", "BccAddresses"):
            v = d.get(k) or []
            if not isinstance(v, list):
                self.bad("%s must be a list" % k)
            for a in v:
                if not valid_email(a):
                    self.bad("Missing final '@domain'" if "@" not in str(a) else "Illegal address", "BadRequestException")
                rc.append((k, addr_of(a)))
        if len(rc) > 50:
            self.bad("Recipient count exceeds 50.", "MessageRejected")
        return rc

    def handle(self, req, route, ctx):
        try:
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self.bad("Unable to parse request body as JSON.", "SerializationException")
        if route.name == "bulk":
            return self._bulk(req, body, ctx)
        content = body.get("Content")
        if not isinstance(content, dict) or sum(k in content for k in ("Simple", "Raw", "Template")) != 1:
            self.bad("Content must contain exactly one of Simple, Raw or Template.")
        rcpts = self._destination(body.get("Destination"))
        tags = self._tags(body.get("EmailTags"))
        frm = body.get("FromEmailAddress")
        rec = {"configuration_set": body.get("ConfigurationSetName"), "carried": {"EmailTags": tags},
               "list_management": body.get("ListManagementOptions")}
        if "Raw" in content:
            try:
                raw = b64decode_strict((content["Raw"] or {}).get("Data") or "")
            except Exception:
                self.bad("Invalid base64 in Content.Raw.Data", "SerializationException")
            if len(raw) > 10 * 1024 * 1024:
                self.bad("Message length is more than 10485760 bytes long.", "MessageRejected")
            p = parse_mime(raw)
            if "parse_error" in p or not p.get("header_list"):
                self.bad("Unable to parse the raw message.", "MessageRejected")
            self._check_header_list(p["header_list"])
            frm = frm or p.get("from")
            if not frm:
                self.bad("Missing required header 'From'.", "MessageRejected")
            if not rcpts:
                for h in ("To", "Cc", "Bcc"):
                    v = p["headers"].get(h)
                    if v:
                        rcpts += [(h, addr_of(a)) for a in split_addresses(v)]
            rec.update({"raw": raw.decode("utf-8", "replace"), "subject": p.get("subject"),
                        "headers": p.get("headers"), "header_list": p.get("header_list"),
                        "text": p.get("text"), "html": p.get("html"), "mime_parts": p.get("mime_parts"),
                        "content_kind": "raw"})
        elif "Simple" in content:
            s = content["Simple"] or {}
            subj = (s.get("Subject") or {}).get("Data")
            b = s.get("Body") or {}
            if subj is None:
                self.bad("Subject is required.")
            if not (b.get("Text") or b.get("Html")):
                self.bad("Body must contain Text or Html.")
            hdrs = s.get("Headers") or []
            pairs = [(h.get("Name"), h.get("Value")) for h in hdrs if isinstance(h, dict)]
            self._check_header_list(pairs)
            rec.update({"subject": subj, "text": (b.get("Text") or {}).get("Data"),
                        "html": (b.get("Html") or {}).get("Data"),
                        "headers": {n: v for n, v in pairs}, "content_kind": "simple"})
        else:
            t = content["Template"] or {}
            rec.update({"template": t, "content_kind": "template", "subject": None})
        if not frm:
            self.bad("Missing FromEmailAddress.")
        if not valid_email(frm):
            self.bad("Illegal address", "BadRequestException")
        if not rcpts:
            self.bad("Missing required field Destination.", "BadRequestException")
        rule = ctx.msg_fault([a for _k, a in rcpts])
        if rule is not None:
            raise Reply(self.error(rule.status or 400, rule.message or
                                   "Email address is not verified. The following identities failed the check in region US-EAST-1: %s" % rcpts[0][1],
                                   code=rule.error_code or "MessageRejected"))
        mid = _mid()
        rec["from"] = frm
        rec["provider_message_id"] = mid
        rec["ses_message_id_header"] = "<%s@email.amazonses.com>" % mid
        rec["sigv4"] = getattr(req, "sigv4", None)
        for kind, a in rcpts:
            r = dict(rec)
            r["recipient"] = a
            r["recipient_kind"] = kind
            ctx.record(r)
        return Resp(200, {"MessageId": mid}, [("x-amzn-RequestId", uuid4())])

    def _bulk(self, req, body, ctx):
        entries = body.get("BulkEmailEntries")
        if not isinstance(entries, list) or not entries:
            self.bad("BulkEmailEntries is required.")
        if len(entries) > 50:
            self.bad("The number of BulkEmailEntries exceeds the limit of 50.", "BadRequestException")
        dc = body.get("DefaultContent") or {}
        tmpl = dc.get("Template")
        if not isinstance(tmpl, dict) or not (tmpl.get("TemplateName") or tmpl.get("TemplateArn") or tmpl.get("TemplateContent")):
            self.bad("DefaultContent.Template is required (SendBulkEmail is template-only).")
        frm = body.get("FromEmailAddress")
        if not frm or not valid_email(frm):
            self.bad("Missing FromEmailAddress.")
        default_tags = self._tags(body.get("DefaultEmailTags"), "DefaultEmailTags")
        try:
            default_data = json.loads(tmpl.get("TemplateData") or "{}")
        except ValueError:
            self.bad("TemplateData is not valid JSON.")
        tc = tmpl.get("TemplateContent") or {}
        results = []
        for e in entries:
            rc = self._destination(e.get("Destination"))
            tags = dict(default_tags)
            tags.update(self._tags(e.get("ReplacementTags"), "ReplacementTags"))
            rule = ctx.msg_fault([a for _k, a in rc])
            if rule is not None:
                results.append({"Status": rule.error_code or "MESSAGE_REJECTED",
                                "Error": rule.message or "Email address is not verified."})
                continue
            rtc = (e.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}
            try:
                data = dict(default_data)
                data.update(json.loads(rtc.get("ReplacementTemplateData") or "{}"))
            except ValueError:
                results.append({"Status": "INVALID_PARAMETER", "Error": "ReplacementTemplateData is not valid JSON."})
                continue

            def render(s):
                if s is None:
                    return None
                return re.sub(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}", lambda m: str(data.get(m.group(1), "")), s)
            hdrs = {h.get("Name"): h.get("Value") for h in e.get("ReplacementHeaders") or [] if isinstance(h, dict)}
            mid = _mid()
            for kind, a in rc:
                ctx.record({"recipient": a, "recipient_kind": kind, "from": frm,
                            "subject": render(tc.get("Subject")), "html": render(tc.get("Html")),
                            "text": render(tc.get("Text")), "headers": hdrs,
                            "template": {"name": tmpl.get("TemplateName"), "data": data},
                            "carried": {"EmailTags": tags}, "content_kind": "bulk_template",
                            "configuration_set": body.get("ConfigurationSetName"),
                            "provider_message_id": mid})
            results.append({"Status": "SUCCESS", "MessageId": mid})
        return Resp(200, {"BulkEmailEntryResults": results}, [("x-amzn-RequestId", uuid4())])
