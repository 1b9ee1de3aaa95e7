#!/usr/bin/env python3
"""Tests of the local test servers themselves (mock_provider.py, smtp_sink.py, fastmock).

    python3 test/mocks/test_mocks.py

Starts each server on free loopback ports, prints one ``ok - ...`` /
``not ok - ...`` line per check and, last, ``N passed, N failed``; exits 1 on
any failure.  Servers it started are always stopped (SIGTERM, then SIGKILL).
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from providers import sigv4  # noqa: E402

PY = sys.executable
RESULTS = {"pass": 0, "fail": 0}
PROCS = []
TMP = tempfile.mkdtemp(prefix="be-mocks-")
DEADLINE = time.time() + 100


def check(name, cond, detail=""):
    if cond:
        RESULTS["pass"] += 1
        print("ok - %s" % name, flush=True)
    else:
        RESULTS["fail"] += 1
        print("not ok - %s%s" % (name, (" # " + str(detail)[:300]) if detail else ""), flush=True)
    return cond


def start(cmd, timeout=10):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(TMP, "stderr-%d.log" % len(PROCS)), "w"),
                         stdin=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(p)
    end = time.time() + timeout
    line = b""
    while time.time() < end:
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            line = p.stdout.readline()
            if line.startswith(b"READY"):
                kv = dict(x.split("=") for x in line.decode().split()[1:])
                return p, {k: int(v) for k, v in kv.items()}
            if not line:
                break
        if p.poll() is not None:
            break
    raise RuntimeError("server did not become ready: %r (%r)" % (cmd, line))


def stop_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    end = time.time() + 5
    for p in PROCS:
        try:
            p.wait(max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(2)


class HTTP:
    def __init__(self, port):
        self.port = port

    def req(self, method, path, body=None, headers=None, conn=None, timeout=10):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if conn is None:
            c.close()
        try:
            js = json.loads(data) if data else None
        except ValueError:
            js = None
        return r.status, hdrs, data, js

    def ctl(self, method, path, body=None):
        return self.req(method, path, body if body is not None else None)[3]

    def faults(self, rules):
        return self.ctl("POST", "/_mock/faults", rules)

    def messages(self, provider=None):
        return self.ctl("GET", "/_mock/messages" + ("?provider=%s" % provider if provider else ""))["messages"]


def bearer(k):
    return {"Authorization": "Bearer " + k}


def basic(u, p):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (u, p)).encode()).decode()}


def multipart(fields):
    b = "----bemock%s" % os.urandom(6).hex()
    out = []
    for name, value, filename in fields:
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        out.append(("--%s\r\nContent-Disposition: %s\r\n%s\r\n" % (
            b, disp, "Content-Type: message/rfc822\r\n" if filename else "")).encode())
        out.append(value if isinstance(value, bytes) else value.encode())
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % b).encode())
    return b"".join(out), "multipart/form-data; boundary=%s" % b


RAW_MIME = (b"From: Sender <f@example.com>\r\nTo: r@example.com\r\nSubject: raw test\r\n"
            b"Message-ID: <m-raw-1@example.com>\r\nList-Unsubscribe: <https://u.example.com/u/tok>\r\n"
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/alternative; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"plain\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n--b1--\r\n")


def sign_ses(port, body, akid, secret, token=None, service="ses", region="us-east-1", date=None):
    """The test's own SigV4 signer (independent of the mock's verify())."""
    amz = date or datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    headers = {"content-type": "application/json", "host": "127.0.0.1:%d" % port, "x-amz-date": amz}
    if token:
        headers["x-amz-security-token"] = token
    signed = sorted(headers)
    canon = "".join("%s:%s\n" % (h, headers[h].strip()) for h in signed)
    creq = "\n".join(["POST", "/v2/email/outbound-emails", "", canon, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (amz[:8], region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = sigv4.signing_key(secret, amz[:8], region, service)
    import hmac
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    out = {"Content-Type": "application/json", "X-Amz-Date": amz,
           "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (akid, scope, ";".join(signed), sig)}
    if token:
        out["X-Amz-Security-Token"] = token
    return out


KEYS = {
    "sendgrid": "SG.good",
    "mailgun": {"key": "mg-key", "domains": ["mg.example.com"]},
    "postmark": {"tokens": ["pm-token"], "inactive": ["inactive@example.com"]},
    "ses": {"access_key": "AKIDEXAMPLE", "secret_key": "ses-secret", "region": "us-east-1"},
    "sparkpost": "sp-key",
    "mailjet": "mj-pub:mj-priv",
    "resend": "re_good",
    "brevo": "xkeysib-good",
}


def sendgrid_body(to="a@example.com", mid="be-1", order=("text/plain", "text/html")):
    vals = {"text/plain": "hello", "text/html": "<p>hello</p>"}
    return {"personalizations": [{"to": [{"email": to}], "custom_args": {"message_id": mid}}],
            "from": {"email": "news@example.com", "name": "News"}, "subject": "Hi",
            "content": [{"type": t, "value": vals[t]} for t in order],
            "headers": {"List-Unsubscribe": "<https://u.example.com/u/t>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                        "Message-ID": "<be-1@example.com>"}}


def test_provider():
    kf = os.path.join(TMP, "keys.json")
    with open(kf, "w") as fh:
        json.dump(KEYS, fh)
    rec = os.path.join(TMP, "provider.jsonl")
    _p, ports = start([PY, os.path.join(HERE, "mock_provider.py"), "--port", "0", "--keys", kf,
                       "--record", rec, "--seed", "7"])
    h = HTTP(ports["port"])
    check("mock_provider prints READY port=N", ports["port"] > 0)

    # ---- SendGrid
    st, hd, body, _ = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))
    check("sendgrid: 202, empty body, X-Message-Id", st == 202 and body == b"" and hd.get("x-message-id"), (st, body))
    m = h.messages("sendgrid")
    check("sendgrid: recorded with be_message_id, List-Unsubscribe, Message-ID",
          m and m[-1]["be_message_id"] == "be-1" and m[-1]["list_unsubscribe"] and m[-1]["message_id"] == "<be-1@example.com>"
          and m[-1]["provider_message_id"] == hd.get("x-message-id") and m[-1]["auth"] == "ok", m)
    st, _, _, js = h.req("POST", "/v3/mail/send", sendgrid_body(order=("text/html", "text/plain")), bearer("SG.good"))
    check("sendgrid: html before text -> 400 errors[] with SendGrid's text",
          st == 400 and "text/plain content must be first" in js["errors"][0]["message"], js)
    st, _, _, js = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.bad"))
    check("sendgrid: wrong key -> 401 errors[]", st == 401 and "errors" in js, (st, js))
    st, _, _, js = h.req("POST", "/v3/mail/send", sendgrid_body())
    check("sendgrid: missing key -> 401", st == 401 and js["errors"][0]["message"] == "authorization required", js)
    big = sendgrid_body()
    big["personalizations"] = [{"to": [{"email": "r%d@example.com" % i}]} for i in range(1001)]
    st, _, _, js = h.req("POST", "/v3/mail/send", big, bearer("SG.good"))
    check("sendgrid: 1001 personalizations -> 400", st == 400, (st, js))
    dup = sendgrid_body()
    dup["personalizations"].append({"to": [{"email": "a@example.com"}]})
    st, _, _, js = h.req("POST", "/v3/mail/send", dup, bearer("SG.good"))
    check("sendgrid: duplicate address -> 400", st == 400 and "unique" in js["errors"][0]["message"], js)
    h.faults([{"provider": "sendgrid", "mode": "status", "status": 429, "retry_after": 3, "count": 1}])
    t0 = int(time.time())
    st, hd, _, js = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))
    check("sendgrid fault 429: errors body + X-RateLimit-Reset timestamp",
          st == 429 and js["errors"][0]["message"] == "too many requests"
          and t0 + 2 <= int(hd.get("x-ratelimit-reset", 0)) <= t0 + 5, (st, hd, js))
    st, _, _, _ = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))
    check("sendgrid fault count=1 used up -> next request 202", st == 202, st)
    h.faults([{"provider": "sendgrid", "mode": "status", "status": 413, "count": 1}])
    st, _, _, js = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))
    check("sendgrid fault 413 in SendGrid format", st == 413 and js["errors"][0]["message"], js)

    # ---- Mailgun
    rv = {"a@example.com": {"message_id": "be-a"}, "b@example.com": {"message_id": "be-b"},
          "c@example.com": {"message_id": "be-c"}}
    data, ctype = multipart([("from", "News <news@mg.example.com>", None), ("to", "a@example.com", None),
                             ("to", "b@example.com, c@example.com", None), ("subject", "Hi %recipient.message_id%", None),
                             ("text", "t", None), ("html", "<p>h</p>", None),
                             ("h:List-Unsubscribe", "<https://u.example.com/%recipient.message_id%>", None),
                             ("v:message_id", "%recipient.message_id%", None),
                             ("recipient-variables", json.dumps(rv), None)])
    st, _, _, js = h.req("POST", "/v3/mg.example.com/messages", data,
                         dict(basic("api", "mg-key"), **{"Content-Type": ctype}))
    check("mailgun multipart batch: 200 Queued. Thank you.", st == 200 and js["message"] == "Queued. Thank you."
          and js["id"].startswith("<") and js["id"].endswith("@mg.example.com>"), (st, js))
    m = h.messages("mailgun")
    check("mailgun: one record per recipient, %recipient% substituted into v:/h:",
          sorted(x["be_message_id"] for x in m) == ["be-a", "be-b", "be-c"]
          and m[0]["headers"]["List-Unsubscribe"].endswith("be-a>"), m)
    form = "from=news%40mg.example.com&to=z%40example.com&subject=s&text=t&v%3Amessage_id=be-z"
    st, _, _, js = h.req("POST", "/v3/mg.example.com/messages", form.encode(),
                         dict(basic("api", "mg-key"), **{"Content-Type": "application/x-www-form-urlencoded"}))
    check("mailgun urlencoded: 200", st == 200 and h.messages("mailgun")[-1]["be_message_id"] == "be-z", (st, js))
    st, hd, body, _ = h.req("POST", "/v3/mg.example.com/messages", form.encode(),
                            dict(basic("api", "wrong"), **{"Content-Type": "application/x-www-form-urlencoded"}))
    check("mailgun wrong key -> 401 Forbidden", st == 401 and body == b"Forbidden", (st, body))
    st, _, _, js = h.req("POST", "/v3/other.example.com/messages", form.encode(),
                         dict(basic("api", "mg-key"), **{"Content-Type": "application/x-www-form-urlencoded"}))
    check("mailgun unknown domain -> 404 Domain not found", st == 404 and "Domain not found" in js["message"], js)
    data, ctype = multipart([("to", "r@example.com", None), ("message", RAW_MIME, "message.mime")])
    st, _, _, js = h.req("POST", "/v3/mg.example.com/messages.mime", data,
                         dict(basic("api", "mg-key"), **{"Content-Type": ctype}))
    m = h.messages("mailgun")[-1]
    check("mailgun messages.mime: raw MIME recorded and parsed", st == 200 and "raw test" == m["subject"]
          and m["mime_parts"] == ["text/plain", "text/html"] and m["raw"].startswith("From:"), (st, js, m.get("subject")))
    many = "&".join("to=r%d%%40example.com" % i for i in range(1001))
    st, _, _, js = h.req("POST", "/v3/mg.example.com/messages", ("from=f%40mg.example.com&subject=s&text=t&" + many).encode(),
                         dict(basic("api", "mg-key"), **{"Content-Type": "application/x-www-form-urlencoded"}))
    check("mailgun 1001 recipients -> 400", st == 400, (st, js))
    rv = {"r%d@example.com" % i: {"html": "x" * 1000} for i in range(17)}
    data, ctype = multipart([("from", "news@mg.example.com", None)]
                            + [("to", a, None) for a in rv]
                            + [("subject", "s", None), ("html", "%recipient.html%", None),
                               ("recipient-variables", json.dumps(rv), None)])
    st, _, _, js = h.req("POST", "/v3/mg.example.com/messages", data,
                         dict(basic("api", "mg-key"), **{"Content-Type": ctype}))
    check("mailgun recipient-variables over 16 KB -> 413", st == 413 and "16 KB" in js["message"], (st, js))

    # ---- Postmark
    pm = {"X-Postmark-Server-Token": "pm-token", "Accept": "application/json"}

    def pmsg(to, mid):
        return {"From": "news@example.com", "To": to, "Subject": "Hi", "HtmlBody": "<p>x</p>", "TextBody": "x",
                "Headers": [{"Name": "List-Unsubscribe", "Value": "<https://u/x>"}], "Metadata": {"message_id": mid},
                "MessageStream": "broadcast"}
    st, _, _, js = h.req("POST", "/email", pmsg("a@example.com", "pm-1"), pm)
    check("postmark /email: 200 with MessageID, ErrorCode 0", st == 200 and js["ErrorCode"] == 0 and js["MessageID"]
          and js["Message"] == "OK", js)
    check("postmark: Metadata.message_id -> be_message_id", h.messages("postmark")[-1]["be_message_id"] == "pm-1")
    wh = h.ctl("POST", "/_mock/postmark/webhook?recipient=a@example.com&kind=complaint")
    check("postmark webhook: a Broadcast-stream complaint is a SubscriptionChange (SpamComplaint), Metadata back",
          wh["RecordType"] == "SubscriptionChange" and wh["SuppressSending"] is True
          and wh["SuppressionReason"] == "SpamComplaint" and wh["Metadata"] == {"message_id": "pm-1"}
          and wh["MessageID"] == js["MessageID"] and wh["MessageStream"] == "broadcast", wh)
    st, _, _, js = h.req("POST", "/email", pmsg("a@example.com", "x"), {"X-Postmark-Server-Token": "nope"})
    check("postmark wrong token -> 401 ErrorCode 10", st == 401 and js["ErrorCode"] == 10, js)
    st, _, _, js = h.req("POST", "/email", pmsg("inactive@example.com", "x"), pm)
    check("postmark inactive recipient -> 422 ErrorCode 406", st == 422 and js["ErrorCode"] == 406, js)
    h.faults([{"provider": "postmark", "mode": "per_message_error", "match_recipient": "c@example.com", "error_code": 406}])
    batch = [pmsg("a@example.com", "b1"), pmsg("inactive@example.com", "b2"), pmsg("c@example.com", "b3"),
             {"From": "news@example.com", "To": "d@example.com", "Subject": "no body"}]
    n0 = len(h.messages("postmark"))
    st, _, _, js = h.req("POST", "/email/batch", batch, pm)
    check("postmark batch: always 200, per-message ErrorCode in order",
          st == 200 and [x["ErrorCode"] for x in js] == [0, 406, 406, 300] and js[0].get("MessageID"), (st, js))
    check("postmark batch: only the successful message recorded", len(h.messages("postmark")) == n0 + 1)
    st, _, _, js = h.req("POST", "/email/batch", [pmsg("a@example.com", "x")] * 501, pm)
    check("postmark batch of 501 -> 422 ErrorCode 410", st == 422 and js["ErrorCode"] == 410, js)
    h.faults([])

    # ---- SES
    p = ports["port"]
    ses_body = json.dumps({"FromEmailAddress": "news@example.com", "Destination": {"ToAddresses": ["s@example.com"]},
                           "Content": {"Raw": {"Data": base64.b64encode(RAW_MIME).decode()}},
                           "EmailTags": [{"Name": "message_id", "Value": "be-ses-1"}],
                           "ConfigurationSetName": "cs1"}).encode()
    st, _, _, js = h.req("POST", "/v2/email/outbound-emails", ses_body, sign_ses(p, ses_body, "AKIDEXAMPLE", "ses-secret"))
    check("ses: correctly signed (test's own SigV4 signer) -> 200 MessageId", st == 200 and js.get("MessageId"), (st, js))
    m = h.messages("ses")[-1]
    check("ses raw: headers/raw parsed, EmailTags -> be_message_id", m["be_message_id"] == "be-ses-1"
          and m["list_unsubscribe_post"] == "List-Unsubscribe=One-Click" and m["configuration_set"] == "cs1", m)
    st, hd, _, js = h.req("POST", "/v2/email/outbound-emails", ses_body, sign_ses(p, ses_body, "AKIDEXAMPLE", "wrong-secret"))
    check("ses: wrong secret -> 403 InvalidSignatureException", st == 403
          and hd.get("x-amzn-errortype", "").startswith("InvalidSignatureException") and "message" in js, (st, hd))
    hdrs = sign_ses(p, ses_body, "AKIDEXAMPLE", "ses-secret")
    st, hd, _, _ = h.req("POST", "/v2/email/outbound-emails", ses_body + b" ", hdrs)
    check("ses: body changed after signing -> 403", st == 403, st)
    st, hd, _, js = h.req("POST", "/v2/email/outbound-emails", ses_body, sign_ses(p, ses_body, "AKIDEXAMPLE", "ses-secret", service="email"))
    check("ses: scope service 'email' instead of 'ses' -> 403", st == 403 and "ses" in js["message"], js)
    st, hd, _, _ = h.req("POST", "/v2/email/outbound-emails", ses_body, sign_ses(p, ses_body, "AKIDOTHER", "ses-secret"))
    check("ses: unknown access key -> 403 UnrecognizedClientException", st == 403
          and hd.get("x-amzn-errortype", "").startswith("UnrecognizedClient"), hd)
    st, hd, _, _ = h.req("POST", "/v2/email/outbound-emails", ses_body, {"Content-Type": "application/json"})
    check("ses: unsigned -> 403 MissingAuthenticationTokenException", st == 403
          and hd.get("x-amzn-errortype", "").startswith("MissingAuthenticationToken"), hd)
    old = sign_ses(p, ses_body, "AKIDEXAMPLE", "ses-secret", date="20200101T000000Z")
    st, _, _, js = h.req("POST", "/v2/email/outbound-emails", ses_body, old)
    check("ses: 2020 date -> 403 Signature expired", st == 403 and "expired" in js["message"], js)
    curl = shutil.which("curl")
    if curl:
        def curl_ses(userpwd, extra=()):
            out = subprocess.run([curl, "-s", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:ses",
                                  "--user", userpwd, "-H", "Content-Type: application/json", *extra,
                                  "--data-binary", "@-", "http://127.0.0.1:%d/v2/email/outbound-emails" % p],
                                 input=ses_body, capture_output=True, timeout=10)
            txt = out.stdout.decode()
            return int(txt.rsplit("\n", 1)[1]), txt.rsplit("\n", 1)[0]
        code, txt = curl_ses("AKIDEXAMPLE:ses-secret")
        check("ses: curl --aws-sigv4 aws:amz:us-east-1:ses signed request verifies (200)", code == 200 and "MessageId" in txt, (code, txt[:300]))
        code, txt = curl_ses("AKIDEXAMPLE:bad")
        check("ses: curl-signed with wrong secret -> 403", code == 403, code)
        sess = dict(KEYS, ses={"access_key": "ASIATEMP", "secret_key": "tmp-secret", "session_token": "sess-tok-123",
                               "region": "us-east-1"})
        h.ctl("POST", "/_mock/keys", sess)
        code, txt = curl_ses("ASIATEMP:tmp-secret", ("-H", "X-Amz-Security-Token: sess-tok-123"))
        check("ses: curl-signed with X-Amz-Security-Token (session token) -> 200", code == 200, (code, txt[:300]))
        check("ses: session token recorded in auth outcome", h.messages("ses")[-1]["auth"] == "sigv4_ok+session_token"
              and "x-amz-security-token" in h.messages("ses")[-1]["sigv4"]["signed_headers"])
        code, txt = curl_ses("ASIATEMP:tmp-secret")
        check("ses: session token configured but not sent -> 403", code == 403, code)
        code, txt = curl_ses("ASIATEMP:tmp-secret", ("-H", "X-Amz-Security-Token: other"))
        check("ses: wrong session token -> 403", code == 403, code)
        h.ctl("POST", "/_mock/keys", KEYS)
    else:
        check("ses: curl available for --aws-sigv4 check (apt-get install curl)", False)
    bad_tag = json.dumps({"FromEmailAddress": "news@example.com", "Destination": {"ToAddresses": ["s@example.com"]},
                          "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
                          "EmailTags": [{"Name": "message_id", "Value": "<x@y>"}]}).encode()
    st, hd, _, js = h.req("POST", "/v2/email/outbound-emails", bad_tag, sign_ses(p, bad_tag, "AKIDEXAMPLE", "ses-secret"))
    check("ses: EmailTags value with '<@>' -> 400 BadRequestException", st == 400
          and hd.get("x-amzn-errortype", "").startswith("BadRequest"), (st, js))
    h.faults([{"provider": "ses", "mode": "status", "status": 429, "count": 1}])
    st, hd, _, js = h.req("POST", "/v2/email/outbound-emails", ses_body, sign_ses(p, ses_body, "AKIDEXAMPLE", "ses-secret"))
    check("ses fault 429 -> TooManyRequestsException in SES error shape", st == 429
          and hd.get("x-amzn-errortype", "").startswith("TooManyRequestsException") and "message" in js, (st, hd, js))
    bulk = json.dumps({"FromEmailAddress": "news@example.com",
                       "DefaultContent": {"Template": {"TemplateContent": {"Subject": "Hi {{name}}", "Text": "t"}, "TemplateData": "{}"}},
                       "BulkEmailEntries": [{"Destination": {"ToAddresses": ["b%d@example.com" % i]},
                                             "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"name": "N%d" % i})}}}
                                            for i in range(3)]}).encode()
    h.faults([{"provider": "ses", "mode": "per_message_error", "match_recipient": "b1@example.com"}])
    hb = sign_ses(p, bulk, "AKIDEXAMPLE", "ses-secret")
    hb["Authorization"] = hb["Authorization"]  # signed for outbound-emails path: re-sign below
    amz = hb["X-Amz-Date"]
    # re-sign for the bulk path with the mock-independent signer logic
    hdrs = {"content-type": "application/json", "host": "127.0.0.1:%d" % p, "x-amz-date": amz}
    sig = sigv4.sign("POST", "/v2/email/outbound-bulk-emails", "", lambda n: [hdrs[n]], sorted(hdrs), bulk,
                     "ses-secret", amz, "us-east-1", "ses")
    hb["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%s/us-east-1/ses/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=%s" % (amz[:8], sig)
    st, _, _, js = h.req("POST", "/v2/email/outbound-bulk-emails", bulk, hb)
    check("ses bulk: per-entry Status (SUCCESS / MESSAGE_REJECTED)", st == 200 and
          [x["Status"] for x in js["BulkEmailEntryResults"]] == ["SUCCESS", "MESSAGE_REJECTED", "SUCCESS"], (st, js))
    h.faults([])

    # ---- SparkPost
    sp = {"recipients": [{"address": {"email": "p1@example.com"}, "metadata": {"message_id": "sp-1"},
                          "substitution_data": {"name": "Ann"}},
                         {"address": "p2@example.com", "metadata": {"message_id": "sp-2"}}],
          "content": {"from": {"email": "news@example.com", "name": "N"}, "subject": "Hi {{name}}",
                      "html": "<p>{{name}}</p>", "text": "t", "headers": {"List-Unsubscribe": "<https://u/x>"}},
          "campaign_id": "c1"}
    st, _, _, js = h.req("POST", "/api/v1/transmissions", sp, {"Authorization": "sp-key"})
    check("sparkpost: 200 results{total_accepted_recipients:2,id}", st == 200 and js["results"]["total_accepted_recipients"] == 2
          and js["results"]["total_rejected_recipients"] == 0 and js["results"]["id"], (st, js))
    m = h.messages("sparkpost")
    check("sparkpost: recipient metadata -> be_message_id, substitution_data applied",
          [x["be_message_id"] for x in m] == ["sp-1", "sp-2"] and m[0]["subject"] == "Hi Ann", m)
    st, _, _, js = h.req("POST", "/api/v1/transmissions", sp, {"Authorization": "Bearer sp-key"})
    check("sparkpost: 'Bearer' prefix is not SparkPost auth -> 401", st == 401 and js["errors"], (st, js))
    st, _, _, js = h.req("POST", "/api/v1/transmissions",
                         {"recipients": [{"address": {"email": "p3@example.com"}}], "content": {"email_rfc822": RAW_MIME.decode()}},
                         {"Authorization": "sp-key"})
    check("sparkpost: email_rfc822 accepted and parsed", st == 200 and h.messages("sparkpost")[-1]["subject"] == "raw test", (st, js))
    check("sparkpost: links inside substitution values are not tracked",
          m[0]["tracked_links"] == 0, m[0].get("tracked_links"))
    tr = {"options": {"click_tracking": True, "open_tracking": True},
          "recipients": [{"address": {"email": "p4@example.com"}}, {"address": {"email": "p5@example.com"}}],
          "content": {"from": "news@example.com", "subject": "s",
                      "html": '<a href="https://a.example/">a</a> {{{body}}}'}}
    h.faults([{"provider": "sparkpost", "mode": "per_message_error", "match_recipient": "p5@example.com", "count": 1}])
    st, _, _, js = h.req("POST", "/api/v1/transmissions?num_rcpt_errors=3", tr, {"Authorization": "sp-key"})
    m = h.messages("sparkpost")[-1]
    check("sparkpost: links of the content tracked with click_tracking on",
          m["recipient"] == "p4@example.com" and m["tracked_links"] == 1 and m["open_tracking"], m)
    errs = js["results"].get("rcpt_to_errors") or []
    check("sparkpost: a rejected recipient counted, its error naming no address",
          st == 200 and js["results"]["total_rejected_recipients"] == 1 and len(errs) == 1
          and "p5@" not in json.dumps(errs), (st, js))
    h.faults([{"provider": "sparkpost", "mode": "status", "status": 420, "count": 1}])
    st, _, _, js = h.req("POST", "/api/v1/transmissions", sp, {"Authorization": "sp-key"})
    check("sparkpost fault 420 quota in SparkPost errors[] format", st == 420 and js["errors"][0]["message"].startswith("Exceed Sending Limit"), js)

    # ---- SendGrid signed Event Webhook
    post = h.ctl("POST", "/_mock/sendgrid/events?timestamp=1700000000", [{"email": "a@example.com", "event": "delivered"}])
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        key = serialization.load_der_public_key(base64.b64decode(post["public_key"]))  # module-level base64
        hd = post["headers"]
        key.verify(base64.b64decode(hd["X-Twilio-Email-Event-Webhook-Signature"]),
                   (hd["X-Twilio-Email-Event-Webhook-Timestamp"] + post["body"]).encode(), ec.ECDSA(hashes.SHA256()))
        ok = isinstance(key.curve, ec.SECP256R1) and hd["X-Twilio-Email-Event-Webhook-Timestamp"] == "1700000000"
    except Exception as e:  # noqa: BLE001
        ok = e
    check("sendgrid signed events: ECDSA P-256 over timestamp + body, key as base64 DER", ok is True, ok)

    # ---- Mailjet
    mj = basic("mj-pub", "mj-priv")

    def mjm(to, cid):
        return {"From": {"Email": "news@example.com", "Name": "N"}, "To": [{"Email": to}], "Subject": "Hi",
                "TextPart": "t", "HTMLPart": "<p>h</p>", "CustomID": cid, "Headers": {"List-Unsubscribe": "<https://u/x>"}}
    st, _, _, js = h.req("POST", "/v3.1/send", {"Messages": [mjm("j1@example.com", "mj-1"), mjm("j2@example.com", "mj-2")]}, mj)
    check("mailjet: 200 per-message Status success with To[].MessageID/MessageUUID",
          st == 200 and all(x["Status"] == "success" and x["To"][0]["MessageID"] and x["To"][0]["MessageUUID"]
                            for x in js["Messages"]), (st, js))
    check("mailjet: CustomID -> be_message_id", [x["be_message_id"] for x in h.messages("mailjet")] == ["mj-1", "mj-2"])
    h.faults([{"provider": "mailjet", "mode": "per_message_error", "match_recipient": "j2@example.com"}])
    st, _, _, js = h.req("POST", "/v3.1/send", {"Messages": [mjm("j1@example.com", "a"), mjm("j2@example.com", "b")]}, mj)
    check("mailjet: one failed message -> per-message error, others still sent",
          st == 400 and [x["Status"] for x in js["Messages"]] == ["success", "error"] and js["Messages"][1]["Errors"], (st, js))
    h.faults([])
    st, _, _, js = h.req("POST", "/v3.1/send", {"Messages": [mjm("j@example.com", "x")] * 51}, mj)
    check("mailjet: 51 messages -> 400", st == 400 and js.get("ErrorMessage"), js)
    st, _, _, js = h.req("POST", "/v3.1/send", {"Messages": [mjm("j@example.com", "x")]}, basic("mj-pub", "bad"))
    check("mailjet: wrong key -> 401 Mailjet error shape", st == 401 and js["StatusCode"] == 401 and js["ErrorMessage"], js)

    # ---- Resend
    rs = bearer("re_good")

    def rmsg(to, mid="rs-1"):
        return {"from": "News <news@example.com>", "to": [to], "subject": "Hi", "html": "<p>h</p>", "text": "t",
                "headers": {"List-Unsubscribe": "<https://u/x>"}, "tags": [{"name": "message_id", "value": mid}]}
    st, hd, _, js = h.req("POST", "/emails", rmsg("r1@example.com"), rs)
    check("resend /emails: 200 {id} + ratelimit-* headers", st == 200 and js.get("id") and "ratelimit-limit" in hd
          and "ratelimit-remaining" in hd and "ratelimit-reset" in hd, (st, hd, js))
    check("resend: tags message_id -> be_message_id", h.messages("resend")[-1]["be_message_id"] == "rs-1")
    st, _, _, js = h.req("POST", "/emails", rmsg("r1@example.com"))
    check("resend: missing key -> 401 missing_api_key", st == 401 and js["name"] == "missing_api_key", js)
    st, _, _, js = h.req("POST", "/emails", rmsg("r1@example.com"), bearer("re_bad"))
    check("resend: wrong key -> 403 invalid_api_Key", st == 403 and js["name"] == "invalid_api_Key", js)
    ik = dict(rs, **{"Idempotency-Key": "be-msg-42"})
    st1, _, _, js1 = h.req("POST", "/emails", rmsg("r2@example.com", "x42"), ik)
    n1 = len(h.messages("resend"))
    st2, _, _, js2 = h.req("POST", "/emails", rmsg("r2@example.com", "x42"), ik)
    check("resend idempotency: same key+body replays the original answer", st1 == st2 == 200 and js1["id"] == js2["id"], (js1, js2))
    check("resend idempotency: replay records nothing new", len(h.messages("resend")) == n1)
    st, _, _, js = h.req("POST", "/emails", rmsg("r3@example.com", "x42"), ik)
    check("resend idempotency: same key, other body -> 409 invalid_idempotent_request",
          st == 409 and js["name"] == "invalid_idempotent_request", js)
    h.faults([{"provider": "resend", "mode": "slow", "delay_ms": 800, "count": 1}])
    ik2 = dict(rs, **{"Idempotency-Key": "be-msg-43"})
    out = {}

    def first():
        out["a"] = h.req("POST", "/emails", rmsg("r4@example.com", "x43"), ik2)
    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.3)
    out["b"] = h.req("POST", "/emails", rmsg("r4@example.com", "x43"), ik2)
    t.join()
    check("resend idempotency: while in flight -> 409 concurrent_idempotent_requests",
          out["a"][0] == 200 and out["b"][0] == 409 and out["b"][3]["name"] == "concurrent_idempotent_requests", (out["a"][0], out["b"][3]))
    st, _, _, js = h.req("POST", "/emails", rmsg("r5@example.com"), dict(rs, **{"Idempotency-Key": "k" * 257}))
    check("resend: 257-char Idempotency-Key -> 400 invalid_idempotency_key", st == 400 and js["name"] == "invalid_idempotency_key", js)
    st, _, _, js = h.req("POST", "/emails/batch", [rmsg("b%d@example.com" % i, "bm%d" % i) for i in range(3)], rs)
    check("resend /emails/batch: {data:[{id}]} one per email", st == 200 and len(js["data"]) == 3, (st, js))
    st, _, _, js = h.req("POST", "/emails/batch", [rmsg("b@example.com")] * 101, rs)
    check("resend batch of 101 -> 422", st == 422 and js["name"] == "validation_error", js)
    badb = [rmsg("ok@example.com"), dict(rmsg("x@example.com"), to=["not-an-address"])]
    st, _, _, js = h.req("POST", "/emails/batch", badb, rs)
    check("resend strict batch: one invalid entry rejects the batch (422)", st == 422, (st, js))
    st, _, _, js = h.req("POST", "/emails/batch", badb, dict(rs, **{"x-batch-validation": "permissive"}))
    check("resend permissive batch: valid entries queued, errors[index]", st == 200 and len(js["data"]) == 1
          and js["errors"][0]["index"] == 1, (st, js))
    st, _, _, js = h.req("POST", "/emails", dict(rmsg("r@example.com"), tags=[{"name": "message_id", "value": "a.b@c"}]), rs)
    check("resend: tag value with '.@' -> 422 validation_error", st == 422, (st, js))
    h.faults([{"provider": "resend", "mode": "status", "status": 429, "retry_after": 4, "count": 1}])
    st, hd, _, js = h.req("POST", "/emails", rmsg("r6@example.com"), rs)
    check("resend fault 429: rate_limit_exceeded + retry-after header", st == 429 and js["name"] == "rate_limit_exceeded"
          and hd.get("retry-after") == "4" and hd.get("ratelimit-remaining") == "0", (st, hd, js))

    # ---- Brevo
    bv = {"api-key": "xkeysib-good"}
    bmsg = {"sender": {"email": "news@example.com"}, "to": [{"email": "v@example.com"}], "subject": "s",
            "htmlContent": "<p>h</p>", "headers": {"idempotencyKey": "be-7"}, "params": {"message_id": "bv-1"}}
    st, _, _, js = h.req("POST", "/v3/smtp/email", bmsg, bv)
    check("brevo: 201 {messageId}", st == 201 and js["messageId"].startswith("<"), (st, js))
    h.faults([{"provider": "brevo", "mode": "status", "status": 429, "retry_after": 5, "count": 1}])
    st, hd, _, js = h.req("POST", "/v3/smtp/email", bmsg, bv)
    check("brevo fault 429: x-sib-ratelimit-reset, no Retry-After", st == 429 and hd.get("x-sib-ratelimit-reset") == "5"
          and "retry-after" not in hd, hd)

    # ---- generic fault modes
    h.faults([{"provider": "sendgrid", "mode": "drop", "count": 1}])
    try:
        st = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))[0]
        check("fault drop: connection closed without an answer", False, st)
    except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine) as e:
        check("fault drop: connection closed without an answer", True, e)
    h.faults([{"provider": "*", "mode": "hang", "count": 1, "max_s": 5}])
    t0 = time.time()
    try:
        h.req("POST", "/emails", rmsg("h@example.com"), rs, timeout=0.7)
        check("fault hang: no answer until the client gives up", False)
    except (socket.timeout, TimeoutError):
        check("fault hang: no answer until the client gives up", 0.6 < time.time() - t0 < 3)
    h.faults([{"provider": "*", "mode": "hang", "count": 1, "max_s": 1}])
    t0 = time.time()
    try:
        h.req("POST", "/emails", rmsg("h@example.com"), rs, timeout=5)
        ended = False
    except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
        ended = True
    check("fault hang: bounded by max_s (closes by itself)", ended and time.time() - t0 < 3, time.time() - t0)
    h.faults([{"provider": "sendgrid", "mode": "slow", "delay_ms": 400, "count": 1}])
    t0 = time.time()
    st = h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))[0]
    check("fault slow: delayed answer, then normal", st == 202 and time.time() - t0 >= 0.38, time.time() - t0)
    h.faults([{"provider": "sendgrid", "mode": "status", "status": 503, "match_recipient": "fail@example.com"}])
    s1 = h.req("POST", "/v3/mail/send", sendgrid_body("fail@example.com"), bearer("SG.good"))[0]
    s2 = h.req("POST", "/v3/mail/send", sendgrid_body("fine@example.com"), bearer("SG.good"))[0]
    check("fault match_recipient: only that recipient's requests fail", (s1, s2) == (503, 202), (s1, s2))
    h.faults([{"provider": "sendgrid", "mode": "status", "status": 500, "probability": 0.5}])
    codes = [h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"))[0] for _ in range(30)]
    check("fault probability 0.5 (seeded): some fail, some pass", 3 < codes.count(500) < 27, codes.count(500))
    rules = h.ctl("GET", "/_mock/faults")["rules"]
    check("GET /_mock/faults shows applied counts", rules[0]["applied"] == codes.count(500), rules)
    h.faults([])

    # ---- keep-alive, stats, record file, reset
    before = h.ctl("GET", "/_mock/stats")["connections"]
    conn = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
    sts = [h.req("POST", "/v3/mail/send", sendgrid_body(), bearer("SG.good"), conn=conn)[0] for _ in range(5)]
    conn.close()
    stats = h.ctl("GET", "/_mock/stats")
    check("keep-alive: 5 requests over one connection", sts == [202] * 5 and stats["connections"] - before == 2, (sts, stats["connections"] - before))
    sg = stats["providers"]["sendgrid"]
    check("stats: requests, messages, status codes per provider", sg["requests"] > 10 and sg["messages"] > 5
          and sg["status"].get("202", 0) > 5 and sg["status"].get("401") == 2, sg)
    with open(rec) as fh:
        lines = [json.loads(x) for x in fh if x.strip()]
    check("--record: one JSON line per accepted message", len(lines) == len(h.messages()) and lines, len(lines))
    h.ctl("POST", "/_mock/reset")
    check("POST /_mock/reset clears messages and stats", h.messages() == [] and h.ctl("GET", "/_mock/stats")["providers"] == {})


# ----------------------------------------------------------------------------- SMTP


def smtp_records(http_port, q=""):
    return HTTP(http_port).messages(q or None)


def test_smtp():
    cert_dir = os.path.join(TMP, "certs")
    r = subprocess.run(["sh", os.path.join(HERE, "make_cert.sh"), cert_dir], capture_output=True, timeout=30)
    have_cert = check("make_cert.sh generates a self-signed cert", r.returncode == 0, r.stderr)
    cert, key = os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem")
    rec = os.path.join(TMP, "smtp.jsonl")
    _p, ports = start([PY, os.path.join(HERE, "smtp_sink.py"), "--port", "0", "--http-port", "0", "--record", rec])
    check("smtp_sink prints READY port=N http=M", ports["port"] > 0 and ports["http"] > 0)
    h = HTTP(ports["http"])
    msg = "From: n@example.com\r\nTo: {to}\r\nSubject: s{i}\r\nMessage-ID: <{i}@example.com>\r\nList-Unsubscribe: <https://u/x>\r\n\r\nbody {i}\r\n.leading dot\r\n"
    s = smtplib.SMTP("127.0.0.1", ports["port"], local_hostname="helo.example.org", timeout=10)
    s.ehlo()
    replies = []
    for i in range(3):
        s.mail("n@example.com")
        s.rcpt("r%d@example.com" % i)
        replies.append(s.data(msg.format(to="r%d@example.com" % i, i=i)))
    s.quit()
    m = h.messages()
    check("smtp: 250 2.0.0 Ok: queued as <ID>, unique ids", all(c == 250 and b"2.0.0 Ok: queued as " in t for c, t in replies)
          and len({x["queue_id"] for x in m}) == 3, replies)
    check("smtp: one connection reused for 3 messages (connection_id, message_index)",
          {x["connection_id"] for x in m} == {1} and [x["message_index"] for x in m] == [1, 2, 3]
          and h.ctl("GET", "/_mock/stats")["connections"] == 1, m and [(x["connection_id"], x["message_index"]) for x in m])
    check("smtp: EHLO name, envelope, headers, dot-unstuffing recorded", m[0]["ehlo"] == "helo.example.org"
          and m[0]["mail_from"] == "n@example.com" and m[0]["recipients"] == ["r0@example.com"]
          and m[0]["message_id"] == "<0@example.com>" and m[0]["list_unsubscribe"] and ".leading dot" in m[0]["raw"]
          and not m[0]["tls"] and not m[0]["auth"], m[0])
    h.faults([{"mode": "rcpt_status", "match_recipient": "grey@example.com", "status": 451, "count": 2},
              {"mode": "rcpt_status", "match_recipient": "gone@example.com", "status": 550}])
    codes = []
    for _ in range(3):
        s = smtplib.SMTP("127.0.0.1", ports["port"], timeout=10)
        try:
            s.sendmail("n@example.com", ["grey@example.com"], msg.format(to="grey@example.com", i=9))
            codes.append(250)
        except smtplib.SMTPRecipientsRefused as e:
            codes.append(e.recipients["grey@example.com"][0])
        s.quit()
    check("smtp rcpt_status 451 count=2: 451, 451, then accepted", codes == [451, 451, 250], codes)
    s = smtplib.SMTP("127.0.0.1", ports["port"], timeout=10)
    try:
        s.sendmail("n@example.com", ["gone@example.com"], "Subject: x\r\n\r\nx\r\n")
        code = 250
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["gone@example.com"][0]
    check("smtp rcpt_status 550: permanent rejection", code == 550, code)
    refused = s.sendmail("n@example.com", ["ok@example.com", "gone@example.com"], "Subject: x\r\n\r\nx\r\n")
    check("smtp: 550 for one recipient, others accepted", list(refused) == ["gone@example.com"], refused)
    h.faults([{"mode": "data_status", "status": 451, "count": 1}])
    try:
        s.sendmail("n@example.com", ["d@example.com"], "Subject: x\r\n\r\nx\r\n")
        code = 250
    except smtplib.SMTPDataError as e:
        code = e.smtp_code
    check("smtp data_status 451 after end-of-data", code == 451, code)
    h.faults([{"mode": "slow", "delay_ms": 300, "count": 1}])
    t0 = time.time()
    s.sendmail("n@example.com", ["d@example.com"], "Subject: x\r\n\r\nx\r\n")
    check("smtp slow (data stage) delays the final reply", time.time() - t0 >= 0.28, time.time() - t0)
    h.faults([{"mode": "drop", "count": 1}])
    try:
        s.sendmail("n@example.com", ["d@example.com"], "Subject: x\r\n\r\nx\r\n")
        dropped = False
    except (smtplib.SMTPServerDisconnected, ConnectionError, smtplib.SMTPDataError):
        dropped = True
    check("smtp drop closes the connection", dropped)
    try:
        s.close()
    except Exception:
        pass
    curl = shutil.which("curl")
    if curl:
        out = subprocess.run([curl, "-sv", "--mail-from", "n@example.com", "--mail-rcpt", "c@example.com", "-T", "-",
                              "smtp://127.0.0.1:%d/helo.curl.test" % ports["port"]],
                             input=b"Subject: curl\r\nMessage-ID: <c@example.com>\r\n\r\nhi\r\n", capture_output=True, timeout=10)
        err = out.stderr.decode("utf-8", "replace")
        last = h.messages()[-1]
        check("smtp + curl: URL path becomes the EHLO name; queued-as id visible to curl",
              out.returncode == 0 and last["ehlo"] == "helo.curl.test" and ("queued as %s" % last["queue_id"]) in err, (out.returncode, last.get("ehlo")))
    stats = h.ctl("GET", "/_mock/stats")
    check("smtp stats: connections and per-code counts", stats["connections"] >= 5 and stats["providers"]["smtp"]["status"].get("451", 0) >= 3, stats)
    with open(rec) as fh:
        check("smtp --record JSONL", len([x for x in fh if x.strip()]) == len(h.messages()))

    if not have_cert:
        return
    _p, ports = start([PY, os.path.join(HERE, "smtp_sink.py"), "--port", "0", "--tls-cert", cert, "--tls-key", key,
                       "--auth", "user:pw"])
    h = HTTP(ports["http"])
    ctx = ssl.create_default_context(cafile=cert)
    s = smtplib.SMTP("127.0.0.1", ports["port"], local_hostname="tls.example.org", timeout=10)
    try:
        s.sendmail("n@example.com", ["a@example.com"], "Subject: x\r\n\r\nx\r\n")
        code = 250
    except smtplib.SMTPSenderRefused as e:
        code = e.smtp_code
    check("smtp --auth: MAIL without AUTH -> 530", code == 530, code)
    s.starttls(context=ctx)
    try:
        s.login("user", "wrong")
        code = 235
    except smtplib.SMTPAuthenticationError as e:
        code = e.smtp_code
    check("smtp STARTTLS + wrong password -> 535", code == 535, code)
    s.login("user", "pw")
    s.sendmail("n@example.com", ["a@example.com"], "Subject: x\r\n\r\nx\r\n")
    s.quit()
    m = h.messages()[-1]
    check("smtp STARTTLS + AUTH recorded (tls, auth_user)", m["tls"] and m["tls_mode"] == "starttls" and m["auth"]
          and m["auth_user"] == "user", m)
    if curl:
        out = subprocess.run([curl, "-s", "--ssl-reqd", "--cacert", cert, "--user", "user:pw", "--mail-from", "n@example.com",
                              "--mail-rcpt", "c@example.com", "-T", "-", "smtp://localhost:%d/curl.tls" % ports["port"]],
                             input=b"Subject: c\r\n\r\nhi\r\n", capture_output=True, timeout=10)
        m = h.messages()[-1]
        check("smtp + curl --ssl-reqd (STARTTLS) + AUTH", out.returncode == 0 and m["tls"] and m["auth"] and m["ehlo"] == "curl.tls",
              (out.returncode, out.stderr[-200:]))
    _p, ports = start([PY, os.path.join(HERE, "smtp_sink.py"), "--port", "0", "--tls-cert", cert, "--tls-key", key,
                       "--implicit-tls"])
    h = HTTP(ports["http"])
    s = smtplib.SMTP_SSL("127.0.0.1", ports["port"], context=ctx, timeout=10)
    s.login("any", "thing")
    s.sendmail("n@example.com", ["i@example.com"], "Subject: x\r\n\r\nx\r\n")
    s.quit()
    m = h.messages()[-1]
    check("smtp --implicit-tls (smtps) + AUTH accepted without --auth", m["tls_mode"] == "implicit" and m["auth_user"] == "any", m)


# ----------------------------------------------------------------------------- fastmock


def test_fastmock():
    binp = os.path.join(HERE, "build", "fastmock")
    r = subprocess.run(["make", "-s", "-C", HERE], capture_output=True, timeout=60)
    if not check("fastmock builds with -O2 -Wall -Wextra -Werror", r.returncode == 0 and os.path.exists(binp), r.stderr[-500:]):
        return
    p, ports = start([binp, "--port", "0", "--header", "X-Request-Id: auto", "--header", "X-Mock: fast"])
    h = HTTP(ports["port"])
    st, hd, body, _ = h.req("POST", "/v3/mail/send", sendgrid_body())
    check("fastmock sendgrid path: 202, empty body, X-Message-Id", st == 202 and body == b"" and hd.get("x-message-id")
          and hd.get("x-mock") == "fast" and hd.get("x-request-id"), (st, hd))
    ids = {h.req("POST", "/emails", {"a": 1})[1]["x-message-id"] for _ in range(5)}
    check("fastmock: unique X-Message-Id per answer", len(ids) == 5)
    _, _, _, js = h.req("POST", "/emails/batch", [{"to": "a", "html": "[{\"}"}, {"to": "b"}, {"to": "c"}])
    check("fastmock /emails/batch: data[] length = messages", len(js["data"]) == 3, js)
    _, _, _, js = h.req("POST", "/email/batch", [{"To": "a"}, {"To": "b", "Headers": [{"Name": "x", "Value": "]"}]}])
    check("fastmock /email/batch: per-message ErrorCode 0 array", [x["ErrorCode"] for x in js] == [0, 0], js)
    _, _, _, js = h.req("POST", "/v3.1/send", {"SandboxMode": False, "Messages": [{"To": [{"Email": "a"}]}, {"To": []}]})
    check("fastmock /v3.1/send: Messages[] length = messages", [x["Status"] for x in js["Messages"]] == ["success"] * 2, js)
    _, _, _, js = h.req("POST", "/api/v1/transmissions", {"content": {"x": [1, 2]}, "recipients": [{"address": "a"}] * 4})
    check("fastmock /api/v1/transmissions: total_accepted_recipients = recipients", js["results"]["total_accepted_recipients"] == 4, js)
    sk = socket.create_connection(("127.0.0.1", ports["port"]), timeout=5)
    pipe = (b"POST /emails HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" * 3 +
            b"POST /v3/mail/send HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    sk.sendall(pipe)
    data = b""
    while True:
        chunk = sk.recv(65536)
        if not chunk:
            break
        data += chunk
    sk.close()
    check("fastmock: 4 pipelined requests -> 4 answers, then close", data.count(b"HTTP/1.1 ") == 4 and b"202 Accepted" in data, data[:200])
    wrk = shutil.which("wrk")
    if wrk:
        script = os.path.join(TMP, "post.lua")
        with open(script, "w") as fh:
            fh.write('wrk.method="POST"\nwrk.body=\'{"personalizations":[{"to":[{"email":"a@example.com"}]}]}\'\n')
        out = subprocess.run([wrk, "-t1", "-c16", "-d2s", "-s", script, "http://127.0.0.1:%d/v3/mail/send" % ports["port"]],
                             capture_output=True, timeout=20).stdout.decode()
        rps = float(([l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")] or ["0"])[0])
        check("fastmock throughput > 50,000 req/s (wrk -t1 -c16, %.0f req/s)" % rps, rps > 50000, out[-300:])
    else:
        t0, n = time.time(), 0
        conn = http.client.HTTPConnection("127.0.0.1", ports["port"], timeout=5)
        while time.time() - t0 < 1:
            h.req("POST", "/v3/mail/send", b"{}", conn=conn)
            n += 1
        check("fastmock answers a python keep-alive client (%d req/s; install wrk for the real measure)" % n, n > 1000)
    os.killpg(p.pid, signal.SIGTERM)
    out = p.stdout.read().decode()
    p.wait(5)
    check("fastmock: SIGTERM prints requests=N bytes=M and exits 0", p.returncode == 0 and "requests=" in out and " bytes=" in out, (p.returncode, out))


def main():
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(1)))
    t0 = time.time()
    try:
        for fn in (test_provider, test_smtp, test_fastmock):
            try:
                fn()
            except Exception as exc:
                traceback.print_exc()
                check("%s raised no exception" % fn.__name__, False, repr(exc))
    finally:
        stop_all()
        shutil.rmtree(TMP, ignore_errors=True)
    leftovers = [p.pid for p in PROCS if p.poll() is None]
    check("all started servers stopped", not leftovers, leftovers)
    print("# %.1f s" % (time.time() - t0))
    print("%d passed, %d failed" % (RESULTS["pass"], RESULTS["fail"]))
    return 1 if RESULTS["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
