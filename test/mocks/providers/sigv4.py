"""AWS Signature Version 4 verification (header form), standard library only.

Implements the algorithm of docs.aws.amazon.com/IAM/latest/UserGuide/
create-signed-request.html for non-S3 services:

  CanonicalRequest = Method \\n CanonicalURI \\n CanonicalQuery \\n
                     CanonicalHeaders \\n SignedHeaders \\n HexSHA256(payload)
  StringToSign     = "AWS4-HMAC-SHA256" \\n X-Amz-Date \\n Scope \\n HexSHA256(CanonicalRequest)
  kSigning         = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")

As esp-apis.md notes for libcurl (CURLOPT_AWS_SIGV4, verified with curl 7.88.1):
the signed ``host`` includes the port, the payload hash is SHA-256 of the body
(``x-amz-content-sha256`` is used instead when the client sent it), and
``x-amz-security-token`` is one of the signed headers when present.
"""

import hashlib
import hmac
import re
import urllib.parse

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<sh>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _uri_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def canonical_uri(path):
    # Non-S3 services: each segment URI-encoded (the path as received is
    # already encoded once; decode then encode to normalise).
    return _uri_encode(urllib.parse.unquote(path or "/"), True) or "/"


def canonical_query(query_string):
    pairs = urllib.parse.parse_qsl(query_string or "", keep_blank_values=True)
    enc = sorted((_uri_encode(k, False), _uri_encode(v, False)) for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in enc)


def _trim(v):
    return re.sub(r"\s+", " ", v.strip())


def canonical_request(method, path, query_string, headers, signed_headers, payload_hash):
    """``headers``: callable name -> value (or None) / list of values."""
    lines = []
    for name in signed_headers:
        vals = headers(name)
        lines.append("%s:%s\n" % (name, ",".join(_trim(v) for v in vals)))
    return "\n".join([method, canonical_uri(path), canonical_query(query_string),
                      "".join(lines), ";".join(signed_headers), payload_hash])


def string_to_sign(amz_date, scope, creq):
    return "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                      hashlib.sha256(creq.encode("utf-8")).hexdigest()])


def sign(method, path, query_string, headers, signed_headers, body, secret, amz_date,
         region, service):
    """Signature hex for the given request (used by the tests' own signer too)."""
    ph = hashlib.sha256(body).hexdigest()
    creq = canonical_request(method, path, query_string, headers, signed_headers, ph)
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    sts = string_to_sign(amz_date, scope, creq)
    return hmac.new(signing_key(secret, amz_date[:8], region, service), sts.encode(),
                    hashlib.sha256).hexdigest()


class SigV4Error(Exception):
    def __init__(self, error_type, message, status=403):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


def verify(method, path, query_string, header_get_all, body, credentials, service="ses",
           region=None, now=None, max_skew_s=900):
    """Verify a SigV4 ``Authorization`` header.

    ``header_get_all(name)`` returns the list of values of header ``name``.
    ``credentials`` maps access key id -> {"secret": ..., "session_token": ... or None}.
    Returns a dict describing the credential used; raises ``SigV4Error`` with
    the error AWS gives (MissingAuthenticationTokenException,
    IncompleteSignatureException, UnrecognizedClientException,
    InvalidSignatureException, ...).
    """
    import calendar
    import time as _time

    auths = header_get_all("authorization")
    if not auths:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    m = AUTH_RE.match(auths[0].strip())
    if not m:
        raise SigV4Error("IncompleteSignatureException",
                         "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                         "parameters (AWS4-HMAC-SHA256). Authorization=%s" % auths[0][:40], 400)
    cred = m.group("cred").split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise SigV4Error("IncompleteSignatureException",
                         "Credential should be scoped to a valid region, not a malformed scope.", 400)
    akid, date, cregion, cservice, _ = cred
    signed = m.group("sh").split(";")
    if signed != sorted(signed) or any(h != h.lower() for h in signed):
        raise SigV4Error("InvalidSignatureException",
                         "The request signature we calculated does not match the signature you provided. "
                         "SignedHeaders must be lower-case and sorted.")
    if "host" not in signed:
        raise SigV4Error("InvalidSignatureException",
                         "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    amz_dates = header_get_all("x-amz-date")
    if amz_dates:
        amz_date = amz_dates[0].strip()
        if "x-amz-date" not in signed:
            raise SigV4Error("InvalidSignatureException", "'X-Amz-Date' must be a 'SignedHeader' when present.")
    else:
        raise SigV4Error("IncompleteSignatureException",
                         "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.", 400)
    if not re.match(r"^\d{8}T\d{6}Z$", amz_date):
        raise SigV4Error("IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. Got '%s'." % amz_date, 400)
    if amz_date[:8] != date:
        raise SigV4Error("InvalidSignatureException",
                         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'" % (date, amz_date[:8]))
    if cservice != service:
        raise SigV4Error("InvalidSignatureException",
                         "Credential should be scoped to correct service: '%s'. " % service)
    if region and cregion != region:
        raise SigV4Error("InvalidSignatureException",
                         "Credential should be scoped to a valid region. ")
    ts = calendar.timegm(_time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    now = _time.time() if now is None else now
    if abs(now - ts) > max_skew_s:
        raise SigV4Error("InvalidSignatureException",
                         "Signature expired: %s is now earlier than the allowed skew." % amz_date)
    entry = credentials.get(akid) if credentials is not None else None
    if credentials is not None and entry is None:
        raise SigV4Error("UnrecognizedClientException", "The security token included in the request is invalid.")
    tokens = header_get_all("x-amz-security-token")
    if entry is not None and entry.get("session_token"):
        if not tokens or tokens[0].strip() != entry["session_token"]:
            raise SigV4Error("UnrecognizedClientException", "The security token included in the request is invalid.")
        if "x-amz-security-token" not in signed:
            raise SigV4Error("InvalidSignatureException", "'X-Amz-Security-Token' must be a 'SignedHeader'.")
    elif entry is not None and tokens:
        raise SigV4Error("UnrecognizedClientException", "The security token included in the request is invalid.")
    for h in signed:
        if not header_get_all(h):
            raise SigV4Error("InvalidSignatureException", "Signed header '%s' is not present in the request." % h)
    psh = header_get_all("x-amz-content-sha256")
    payload_hash = psh[0].strip() if psh else hashlib.sha256(body).hexdigest()
    creq = canonical_request(method, path, query_string, header_get_all, signed, payload_hash)
    scope = "%s/%s/%s/aws4_request" % (date, cregion, cservice)
    sts = string_to_sign(amz_date, scope, creq)
    result = {"access_key": akid, "region": cregion, "service": cservice,
              "signed_headers": signed, "session_token": bool(tokens)}
    if entry is None:
        result["checked"] = False
        return result
    want = hmac.new(signing_key(entry["secret"], date, cregion, cservice), sts.encode(),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, m.group("sig").lower()):
        raise SigV4Error("InvalidSignatureException",
                         "The request signature we calculated does not match the signature you provided. "
                         "Check your AWS Secret Access Key and signing method. Consult the service "
                         "documentation for details.\n\nThe Canonical String for this request should have "
                         "been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n" % (creq, sts))
    result["checked"] = True
    return result
