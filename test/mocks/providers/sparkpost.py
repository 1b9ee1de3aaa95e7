"""SparkPost Transmissions mock: ``POST /api/v1/transmissions``.

Follows reference/esp-apis.md, SparkPost table:
* auth ``Authorization: <API_KEY>`` (the raw key, no "Bearer"), or Basic with
  the key as user and an empty password; missing/wrong -> 401
  ``{"errors":[{"message":"Unauthorized."}]}``;
* body ``recipients[{address{email,name} | address:"x@y", tags[], metadata{},
  substitution_data{}}]`` and ``content`` either inline
  ``{from, subject, html, text, headers{}, reply_to}`` or ``{email_rfc822}`` or
  ``{template_id}``; transmission-level ``metadata``/``substitution_data``
  (recipient values override them, as in SparkPost); ``{{var}}`` substituted;
* success 200 ``{"results":{"total_rejected_recipients":R,"total_accepted_recipients":N,"id":"..."}}``;
  ``?num_rcpt_errors=n`` adds ``rcpt_to_errors``, whose entries name no
  recipient (as in SparkPost's own examples);
* ``options.click_tracking`` / ``open_tracking``: each recorded message says
  how many links SparkPost would track (``tracked_links``): the links of
  ``content.html`` itself, never those inside a substitution value
  (SparkPost: "links in substitution data are not tracked");
* errors ``{"errors":[{"message","description","code"}]}``: 400/422 validation
  (code 1400 required field missing, 1300 invalid data), **420** sending
  limit exceeded (code 2102), 429, 5xx.
"""

import json
import re
from html import escape as html_escape

from .base import Provider, Reply, Resp, addr_of, parse_basic, valid_email
from mocklib import next_seq, parse_mime


class SparkPost(Provider):
    name = "sparkpost"
    routes = [("POST", re.compile(r"^/api/v1/transmissions/?$"), "transmissions")]

    def error(self, status, message=None, retry_after=None, code=None, description=None):
        defaults = {400: ("invalid data format/type", "1300"), 401: ("Unauthorized.", None),
                    403: ("Forbidden.", None), 413: ("Request entity too large", None),
                    420: ("Exceed Sending Limit (daily)", "2102"),
                    422: ("required field is missing", "1400"),
                    429: ("Too many requests", None),
                    500: ("Internal server error", None), 503: ("Service Unavailable", None)}
        dmsg, dcode = defaults.get(status, ("error", None))
        e = {"message": message or dmsg}
        if description:
            e["description"] = description
        if code or dcode:
            e["code"] = str(code or dcode)
        return Resp(status, {"errors": [e]}, self.retry_after_headers(retry_after))

    def authenticate(self, req):
        auth = (req.header("Authorization") or "").strip()
        key = None
        if auth.lower().startswith("basic "):
            cred = parse_basic(req)
            key = cred[0] if cred else None
        elif auth and " " not in auth:
            key = auth
        if not key:
            raise Reply(self.error(401))
        keys = self.key_list()
        if keys is None:
            return "unchecked"
        if key not in keys:
            raise Reply(self.error(401))
        return "ok"

    @staticmethod
    def _addr(r):
        a = r.get("address") if isinstance(r, dict) else None
        if isinstance(a, dict):
            return a.get("email"), a.get("name")
        if isinstance(a, str):
            return addr_of(a), None
        return None, None

    def recipients(self, req, route):
        try:
            return [self._addr(r)[0] for r in req.json().get("recipients") or []]
        except Exception:
            return []

    def bad(self, msg, desc, code="1400", status=422):
        raise Reply(self.error(status, msg, code=code, description=desc))

    def handle(self, req, route, ctx):
        try:
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self.bad("invalid data format/type", "Problems parsing request as json", "1300", 400)
        rcpts = body.get("recipients")
        if isinstance(rcpts, dict) and rcpts.get("list_id"):
            self.bad("invalid data format/type", "stored recipient lists are not supported by the mock", "1300")
        if not isinstance(rcpts, list) or not rcpts:
            self.bad("required field is missing", "recipients or list_id required")
        content = body.get("content")
        if not isinstance(content, dict):
            self.bad("required field is missing", "content object is required")
        parsed = None
        if "email_rfc822" in content:
            raw = content["email_rfc822"]
            if not isinstance(raw, str) or not raw:
                self.bad("invalid data format/type", "content.email_rfc822 must be a string", "1300")
            parsed = parse_mime(raw)
            if not parsed.get("from"):
                self.bad("required field is missing", "content.email_rfc822 has no From header")
        elif "template_id" in content:
            pass
        else:
            if not content.get("from"):
                self.bad("required field is missing", "content.from is a required field")
            frm = content["from"]
            fe = frm.get("email") if isinstance(frm, dict) else frm
            if not valid_email(fe):
                self.bad("invalid data format/type", "content.from.email is not a valid email address", "1300")
            if not content.get("subject"):
                self.bad("required field is missing", "content.subject is a required field")
            if not (content.get("html") or content.get("text") or content.get("amp_html")):
                self.bad("required field is missing", "At least one of text or html needs to exist in content")
            h = content.get("headers") or {}
            if not isinstance(h, dict) or any(not isinstance(v, str) for v in h.values()):
                self.bad("invalid data format/type", "content.headers must be an object of strings", "1300")
        for i, r in enumerate(rcpts):
            em, _n = self._addr(r)
            if not em:
                self.bad("required field is missing", "address.email is required for each recipient")
            for k in ("metadata", "substitution_data"):
                if k in r and not isinstance(r[k], dict):
                    self.bad("invalid data format/type", "recipients[%d].%s must be an object" % (i, k), "1300")
        tid = str(next_seq() * 1000003 + 30000000000000000)[:17]
        accepted, rejected, errors = 0, 0, []
        gmeta = body.get("metadata") or {}
        gsub = body.get("substitution_data") or {}
        for r in rcpts:
            em, name = self._addr(r)
            if not valid_email(em):
                rejected += 1
                errors.append({"message": "invalid data format/type", "description": "Invalid email address: %s" % em, "code": "1300"})
                continue
            rule = ctx.msg_fault([em])
            if rule is not None:
                # as in SparkPost's own examples: the error names no recipient
                rejected += 1
                errors.append({"message": rule.message or "recipient rejected",
                               "description": "Recipient address was suppressed due to system policy",
                               "code": str(rule.error_code or "1902")})
                continue
            meta = dict(gmeta)
            meta.update(r.get("metadata") or {})
            subd = dict(gsub)
            subd.update(r.get("substitution_data") or {})

            def sub(s, html=False):
                """{{{x}}} inserts the value as is; {{x}} HTML-escapes it in the html part."""
                if not isinstance(s, str):
                    return s

                def val(m):
                    v = subd.get(m.group(2), "")
                    v = v if isinstance(v, str) else json.dumps(v)
                    return html_escape(v) if html and m.group(1) is None else v
                return re.sub(r"\{\{(\{)?\s*([A-Za-z0-9_]+)\s*\}?\}\}", val, s)
            # SparkPost tracks the links of the content, never those inside a substitution value
            opts = body.get("options") or {}
            content_html = content.get("html") if isinstance(content.get("html"), str) else ""
            literal = re.sub(r"\{\{\{?[^}]*\}\}\}?", "", content_html)
            tracked = len(re.findall(r"<a\s[^>]*href=", literal, re.I)) if opts.get("click_tracking") else 0
            rec = {"recipient": em, "recipient_name": name, "carried": {"metadata": meta},
                   "tracked_links": tracked, "open_tracking": bool(opts.get("open_tracking")),
                   "tags": r.get("tags"), "substitution_data": subd,
                   "campaign_id": body.get("campaign_id"), "options": body.get("options"),
                   "provider_message_id": tid}
            if parsed is not None:
                rec.update({"raw": content["email_rfc822"], "from": parsed.get("from"),
                            "subject": parsed.get("subject"), "headers": parsed.get("headers"),
                            "text": parsed.get("text"), "html": parsed.get("html"),
                            "mime_parts": parsed.get("mime_parts")})
            else:
                frm = content.get("from")
                rec.update({"from": frm.get("email") if isinstance(frm, dict) else frm,
                            "subject": sub(content.get("subject")),
                            "headers": {k: sub(v) for k, v in (content.get("headers") or {}).items()},
                            "html": sub(content.get("html"), html=True), "text": sub(content.get("text")),
                            "template_id": content.get("template_id")})
            ctx.record(rec)
            accepted += 1
        if accepted == 0:
            raise Reply(self.error(422, "At least one valid recipient is required", code="1902",
                                   description="all recipients were rejected"))
        res = {"total_rejected_recipients": rejected, "total_accepted_recipients": accepted, "id": tid}
        try:
            n = int((req.query.get("num_rcpt_errors") or ["0"])[0])
        except ValueError:
            n = 0
        if n > 0:
            res["rcpt_to_errors"] = errors[:n]
        return Resp(200, {"results": res})
