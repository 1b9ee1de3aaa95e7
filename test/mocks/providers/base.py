"""Base types for the provider mocks.

A provider module defines a subclass of ``Provider`` with:

* ``name`` and ``routes`` - ``[(method, compiled_regex, route_name), ...]``;
* ``authenticate(req)`` - returns the auth outcome string ("ok", "unchecked", ...)
  or raises ``Reply`` with the provider's real 401/403 answer;
* ``recipients(req, route)`` - best-effort recipient list (for fault matching);
* ``handle(req, route, ctx)`` - validates, records, and returns a ``Resp`` or
  raises ``Reply`` with the provider's error;
* ``error(status, message=None, retry_after=None, code=None)`` - a ``Resp`` in
  the provider's documented error format for ``status`` (used by faults).
"""

import base64
import email.parser
import email.policy
import json
import re
import time
import urllib.parse


class Resp:
    def __init__(self, status, body=b"", headers=None, content_type="application/json"):
        self.status = status
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.headers = list(headers or [])
        if body and content_type and not any(h[0].lower() == "content-type" for h in self.headers):
            self.headers.append(("Content-Type", content_type))

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Reply(Exception):
    """Raised by a provider to answer immediately with ``resp``."""

    def __init__(self, resp):
        super().__init__(resp.status)
        self.resp = resp


class Req:
    def __init__(self, method, path, query, headers, body, client=None, query_string=""):
        self.method = method
        self.path = path
        self.query_string = query_string
        self.query = query            # dict name -> [values]
        self.headers = headers        # http.client.HTTPMessage (case-insensitive get)
        self.body = body              # bytes (already de-chunked and gunzipped)
        self.client = client
        self._json = None
        self._form = None

    def header(self, name, default=None):
        v = self.headers.get(name)
        return default if v is None else v

    @property
    def content_type(self):
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        """The body as JSON; raises ValueError when it is not valid JSON."""
        if self._json is None:
            self._json = json.loads(self.body.decode("utf-8"))
        return self._json

    def form(self):
        """multipart/form-data or x-www-form-urlencoded body as a list of
        ``(name, value, filename)``; file parts keep bytes values."""
        if self._form is not None:
            return self._form
        ctype = self.header("Content-Type") or ""
        fields = []
        if ctype.lower().startswith("multipart/form-data"):
            raw = b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + self.body
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
            if not msg.is_multipart():
                raise ValueError("malformed multipart body")
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_param("filename", header="content-disposition")
                payload = part.get_payload(decode=True)
                if payload is None and part.is_multipart():
                    # message/rfc822 file parts arrive parsed: serialise them back
                    payload = b"".join(p.as_bytes() for p in part.get_payload())
                payload = payload or b""
                if filename is None:
                    charset = part.get_content_charset() or "utf-8"
                    payload = payload.decode(charset, "replace")
                fields.append((name, payload, filename))
        elif ctype.lower().startswith("application/x-www-form-urlencoded") or not ctype:
            for k, v in urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"),
                                               keep_blank_values=True):
                fields.append((k, v, None))
        else:
            raise ValueError("unsupported Content-Type %r" % ctype)
        self._form = fields
        return fields


def parse_basic(req):
    """(user, password) from an HTTP Basic Authorization header, or None."""
    auth = req.header("Authorization") or ""
    if not auth.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except Exception:
        return None
    user, sep, pw = raw.partition(":")
    if not sep:
        return None
    return user, pw


def parse_bearer(req):
    auth = req.header("Authorization") or ""
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def as_list(v):
    if v is None:
        return []
    if isinstance(v, (list, tuple, set)):
        return list(v)
    return [v]


EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$|^[^@\s<>,;\"]+@(localhost|127\.0\.0\.1)$")


def addr_of(s):
    """The bare address of ``"Name <a@b>"`` or ``a@b``."""
    s = (s or "").strip()
    m = re.search(r"<([^<>]*)>\s*$", s)
    return (m.group(1) if m else s).strip()


def valid_email(s):
    return bool(s) and bool(EMAIL_RE.match(addr_of(s)))


def split_addresses(s):
    """Split a comma-separated address list, respecting quoted display names."""
    out, cur, q, depth = [], [], False, 0
    for ch in s or "":
        if ch == '"':
            q = not q
        elif ch == "<" and not q:
            depth += 1
        elif ch == ">" and not q:
            depth -= 1
        if ch == "," and not q and depth <= 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return [x for x in out if x]


class Provider:
    name = "?"
    routes = []

    def __init__(self, keys=None, options=None):
        # keys: whatever the keys file holds for this provider (None = unchecked)
        self.keys = keys
        self.options = options or {}

    # helpers ---------------------------------------------------------------
    def key_list(self, field="keys"):
        """Accepted credentials: a string, a list, or a dict with ``key``/``keys``."""
        k = self.keys
        if k is None:
            return None
        if isinstance(k, str):
            return [k]
        if isinstance(k, list):
            return [str(x) for x in k]
        if isinstance(k, dict):
            v = k.get(field, k.get("key"))
            if v is None:
                return None
            return as_list(v)
        return None

    def option(self, name, default=None):
        if isinstance(self.keys, dict) and name in self.keys:
            return self.keys[name]
        return self.options.get(name, default)

    # interface -------------------------------------------------------------
    def authenticate(self, req):
        raise NotImplementedError

    def begin(self, req, route):
        """Called after auth and before faults; may return a Resp to answer at once."""
        return None

    def finish(self, req, route, resp):
        """Always called after begin() once the answer (or None: no answer) is known."""

    def reset(self):
        """Forget per-run state (POST /_mock/reset)."""

    def recipients(self, req, route):
        return []

    def handle(self, req, route, ctx):
        raise NotImplementedError

    def error(self, status, message=None, retry_after=None, code=None):
        raise NotImplementedError

    def retry_after_headers(self, retry_after):
        """Standard ``Retry-After`` (seconds) unless a provider documents another way."""
        if retry_after is None:
            return []
        return [("Retry-After", str(retry_after))]


def unix_now():
    return int(time.time())


class Route:
    """A matched route: ``route.name`` and path groups via ``route["domain"]``."""

    def __init__(self, name, match):
        self.name = name
        self.groups = match.groupdict() if match else {}

    def __getitem__(self, k):
        return self.groups[k]
