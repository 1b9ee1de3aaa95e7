"""Every HTTP provider through its mock (test/mocks/mock_provider.py), and SES
through the third-party aws-ses-v2-local server as well.

For Mailgun, Postmark, SES, SparkPost, Mailjet and Resend:
- a broadcast of 2,000 contacts: each recipient gets exactly one correct,
  personalised message with one-click unsubscribe headers (raw MIME parsed
  with the email package where the provider carries it), our message id
  carried the provider's way, the provider's id in message_history, and
  the batch providers making one call per batch, not per message;
- faults: throttling (429, SparkPost's 420 quota pause) and transient 5xx
  answers are retried until everything is sent; one permanent per-message
  failure inside a batch fails that message alone; a refused credential
  fails every message at once, not retried, with an error naming the
  integration.
"""
import email
import email.policy
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
PY = sys.executable
PORT = 54341
N = 2000
NF = 120                # contacts in each fault broadcast

KEYS = {
    "mailgun": {"key": "mg-key", "domains": ["mg.example.test"]},
    "postmark": {"tokens": ["pm-token"]},
    "ses": {"access_key": "AKIDBROADCAST", "secret_key": "ses-secret", "session_token": "ses-session",
            "region": "eu-west-1"},
    "sparkpost": "sp-key",
    "mailjet": "mj-public:mj-secret",
    "resend": {"key": "re_good"},
}
# provider -> (config without endpoint, good secret, bad secret, messages per call)
# Mailgun: as many as fit 16 KB of recipient-variables (about 25 of these
# small messages); SparkPost: one transmission per distinct message, and
# each recipient's own unsubscribe link makes every message distinct.
PROVIDERS = {
    "mailgun": ({"domain": "mg.example.test"}, "mg-key", "mg-wrong", 20),
    "postmark": ({}, "pm-token", "pm-wrong", 500),
    "ses": ({"region": "eu-west-1", "access_key_id": "AKIDBROADCAST", "configuration_set": "be-events"},
            json.dumps({"secret_access_key": "ses-secret", "session_token": "ses-session"}),
            json.dumps({"secret_access_key": "not-the-secret", "session_token": "ses-session"}), 1),
    "sparkpost": ({}, "sp-key", "sp-wrong", 1),
    "mailjet": ({"api_key": "mj-public"}, "mj-secret", "mj-wrong", 50),
    "resend": ({}, "re_good", "re_wrong", 100),
}
THROTTLE = {"sparkpost": 420}


def start_server(args):
    p = subprocess.Popen([PY] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("server did not start: %r" % line)
    return p, dict(kv.split("=") for kv in line.split()[1:])


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setup_ws(db, ws, n, prefix):
    db.q("""SELECT broadcast.create_workspace(%s, %s, 'UTC', '{"sending_domain": "news.example.test",
            "unsubscribe_base_url": "https://example.test/u", "default_from_email": "news@example.test",
            "default_from_name": "Example News"}')""", ws, ws)
    db.q("SELECT broadcast.create_list(%s, 'l', 'Readers')", ws)
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)
            SELECT %s, %s || i || '@example.com', 'Name' || i, jsonb_build_object('n', i)
              FROM generate_series(1, %s) i""", ws, prefix, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'l', %s || i || '@example.com' FROM generate_series(1, %s) i""", ws, prefix, n)
    db.q("""SELECT broadcast.create_template(%s, 't', 'Hello {{ contact.first_name }}',
            '<p>Hi {{ contact.first_name | escape }} #{{ contact.n }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')""", ws)


def integrate(db, ws, integ, provider, api, secret):
    cfg = dict(PROVIDERS[provider][0], endpoint=api)
    db.q("SELECT broadcast.create_integration(%s, %s, %s, %s::jsonb, %s)", ws, integ, provider, json.dumps(cfg), secret)


def send(db, ws, integ):
    db.q("SELECT broadcast.create_broadcast(%s, 'b', 'b', '{l}', %s, 't')", ws, integ)
    db.q("SELECT broadcast.schedule_broadcast(%s, 'b')", ws)


def drained(db, ws, n):
    return (db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = %s", ws) == n
            and db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = %s AND status <> 'dead'", ws) == 0)


def messages(api, provider):
    got = http("GET", api + "/_mock/messages?provider=" + provider)
    return got["messages"]


def check_message(provider, m, hist, n_of):
    """Problems with one recorded message (empty when it is right)."""
    rcpt = m["recipient"]
    i = n_of(rcpt)
    mid, pid = hist.get(rcpt, (None, None))
    problems = []
    if m.get("subject") != "Hello Name%s" % i:
        problems.append("subject %r" % m.get("subject"))
    if ("#%s<" % i) not in (m.get("html") or ""):
        problems.append("html not personalised: %r" % (m.get("html") or "")[:80])
    if not (m.get("text") or "").strip():
        problems.append("no text part")
    if not (m.get("list_unsubscribe") or "").startswith("<https://example.test/u/"):
        problems.append("List-Unsubscribe %r" % m.get("list_unsubscribe"))
    if m.get("list_unsubscribe_post") != "List-Unsubscribe=One-Click":
        problems.append("List-Unsubscribe-Post %r" % m.get("list_unsubscribe_post"))
    if m.get("be_message_id") != mid:
        problems.append("carried id %r, history %r" % (m.get("be_message_id"), mid))
    if not pid or m.get("provider_message_id") != pid:
        problems.append("provider id %r, history %r" % (m.get("provider_message_id"), pid))
    if provider == "ses":
        msg = email.message_from_bytes(m["raw"].encode("utf-8"), policy=email.policy.strict)
        parts = [p.get_content_type() for p in msg.iter_parts()] if msg.is_multipart() else []
        if msg.defects or parts != ["text/plain", "text/html"]:
            problems.append("MIME %r %r" % (msg.defects, parts))
        if str(msg["Message-ID"]) != "<%s@news.example.test>" % mid:
            problems.append("Message-ID %r" % str(msg["Message-ID"]))
        if str(msg["To"]) != rcpt:
            problems.append("To %r" % str(msg["To"]))
        if m.get("auth") != "sigv4_ok+session_token" or m.get("configuration_set") != "be-events":
            problems.append("auth %r, configuration set %r" % (m.get("auth"), m.get("configuration_set")))
    if provider == "postmark" and m.get("message_stream") != "broadcast":
        problems.append("stream %r" % m.get("message_stream"))
    if provider == "resend" and m.get("idempotency_key") is None:
        problems.append("no Idempotency-Key")
    if provider == "mailgun" and set(json.loads(m["headers"].get("X-Mailgun-Variables", "{}"))) != {"message_id"}:
        problems.append("X-Mailgun-Variables %r" % m["headers"].get("X-Mailgun-Variables"))
    return problems


def run(r):
    keysdir = tempfile.mkdtemp(prefix="be-keys-")
    keyfile = os.path.join(keysdir, "keys.json")
    with open(keyfile, "w") as f:
        json.dump(KEYS, f)
    mock, mockf = start_server([os.path.join(MOCKS, "mock_provider.py"), "--port", "0", "--keys", keyfile])
    api = "http://127.0.0.1:%s" % mockf["port"]
    c = Cluster(PORT, conf={
        "broadcast_engine.sender_workers": "2",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.retry_base": "'200ms'",
        "broadcast_engine.breaker_threshold": "20",
        "broadcast_engine.breaker_cooldown": "'1s'",
        "broadcast_engine.drain_poll": "'300ms'",
        "broadcast_engine.request_timeout": "'20s'",
        "broadcast_engine.sender_batch_size": "1000",
        "broadcast_engine.max_connections": "8",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        for p in PROVIDERS:
            run_broadcast(r, db, api, p)
        run_faults(r, db, api)
        run_ses_local(r, db)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
        raise
    finally:
        c.destroy()
        mock.kill()
        shutil.rmtree(keysdir, ignore_errors=True)


def run_broadcast(r, db, api, p):
    """A 2,000-contact broadcast, every message checked."""
    ws = "w" + p
    prefix = p[:2] + "."
    t0 = time.time()
    setup_ws(db, ws, N, prefix)
    integrate(db, ws, "main", p, api, PROVIDERS[p][1])
    send(db, ws, "main")
    wait_for("%s broadcast completed" % p, lambda: db.one(
        "SELECT status FROM broadcast.broadcasts WHERE workspace_id = %s", ws) == "completed", 120)
    took = time.time() - t0
    sent, failed = db.row("SELECT sent_count, failed_count FROM broadcast.broadcasts WHERE workspace_id = %s", ws)
    hist = {e: (mid, pid) for e, mid, pid in db.q(
        "SELECT email, message_id::text, provider_message_id FROM broadcast.message_history"
        " WHERE workspace_id = %s AND status = 'sent'", ws)}
    got = [m for m in messages(api, p) if m["recipient"].startswith(prefix)]
    rcpts = [m["recipient"] for m in got]
    r.check("%s: %d sent, none failed, every recipient exactly once (%d messages, %d distinct) in %.1fs"
            % (p, sent, len(rcpts), len(set(rcpts)), took),
            sent == N and failed == 0 and len(rcpts) == N and len(set(rcpts)) == N, (sent, failed, len(rcpts)))

    def n_of(rcpt):
        return rcpt[len(prefix):rcpt.index("@")]
    bad = []
    for m in got:
        pr = check_message(p, m, hist, n_of)
        if pr:
            bad.append((m["recipient"], pr))
    r.check("%s: every message personalised, one-click unsubscribe, our id carried, the provider's id in history"
            % p, not bad and len(hist) == N, (len(bad), bad[:2]))
    limit = PROVIDERS[p][3]
    calls = http("GET", api + "/_mock/stats")["providers"][p]["requests"]
    distinct_ids = len({v[1] for v in hist.values()})
    r.check("%s: %d API calls for %d messages (limit %d per call), %d distinct provider ids"
            % (p, calls, N, limit, distinct_ids),
            calls <= math.ceil(N / limit) + 10 if limit > 1 else calls == N, calls)
    http("POST", api + "/_mock/reset")


def fault_ws(p, fault):
    return "f%s%s" % (p, fault)


def fault_prefix(p, fault):
    return "%s.%s." % (p[:3], fault)


def start_fault_phase(db, api, fault, rules, secret_of):
    http("POST", api + "/_mock/reset")
    http("POST", api + "/_mock/faults", rules)
    for p in PROVIDERS:
        ws = fault_ws(p, fault)
        setup_ws(db, ws, NF, fault_prefix(p, fault))
        integrate(db, ws, "bad" if fault == "auth" else "main", p, api, secret_of(p))
        send(db, ws, "bad" if fault == "auth" else "main")
    for p in PROVIDERS:
        ws = fault_ws(p, fault)
        wait_for("%s %s broadcast drained" % (p, fault), lambda: drained(db, ws, NF), 120)


def outcome(db, api, p, fault):
    ws = fault_ws(p, fault)
    prefix = fault_prefix(p, fault)
    sent, failed, retried = db.row(
        "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),"
        "       count(*) FILTER (WHERE attempts > 1)"
        "  FROM broadcast.message_history WHERE workspace_id = %s", ws)
    rc = [m["recipient"] for m in messages(api, p) if m["recipient"].startswith(prefix)]
    dead = db.q("SELECT email, attempts, last_error FROM broadcast.dead_letters WHERE workspace_id = %s", ws)
    return sent, failed, retried, rc, dead


def run_faults(r, db, api):
    # throttled: the first two calls of every provider are refused as over the limit
    rules = [{"provider": p, "mode": "status", "status": THROTTLE.get(p, 429), "retry_after": 1, "count": 2}
             for p in PROVIDERS]
    start_fault_phase(db, api, "thr", rules, lambda p: PROVIDERS[p][1])
    stats = http("GET", api + "/_mock/stats")["providers"]
    for p in PROVIDERS:
        sent, failed, retried, rc, dead = outcome(db, api, p, "thr")
        st = stats[p]["status"]
        code = str(THROTTLE.get(p, 429))
        ok = sent == NF and failed == 0 and len(rc) == NF and len(set(rc)) == NF and st.get(code) == 2
        if p in THROTTLE:
            # a quota pause spends no attempt
            ok = ok and retried == 0
        else:
            ok = ok and retried >= 1
        r.check("%s throttled: two HTTP %s answers, then all %d sent once (%d retried)" % (p, code, sent, retried),
                ok, (sent, failed, retried, len(rc), st, dead[:1]))

    # transient server errors
    rules = [{"provider": p, "mode": "status", "status": s, "count": 1}
             for p in PROVIDERS for s in (500, 503)]
    start_fault_phase(db, api, "err", rules, lambda p: PROVIDERS[p][1])
    stats = http("GET", api + "/_mock/stats")["providers"]
    for p in PROVIDERS:
        sent, failed, retried, rc, dead = outcome(db, api, p, "err")
        st = stats[p]["status"]
        r.check("%s 5xx: a 500 and a 503, then all %d sent once (%d retried)" % (p, sent, retried),
                sent == NF and failed == 0 and len(set(rc)) == NF and len(rc) == NF and retried >= 1
                and st.get("500") == 1 and st.get("503") == 1, (sent, failed, len(rc), st, dead[:1]))

    # one permanently refused recipient inside a batch
    rules = [{"provider": p, "mode": "per_message_error", "match_recipient": fault_prefix(p, "one") + "7@example.com",
              "count": -1} for p in PROVIDERS]
    start_fault_phase(db, api, "one", rules, lambda p: PROVIDERS[p][1])
    for p in PROVIDERS:
        sent, failed, retried, rc, dead = outcome(db, api, p, "one")
        bad = fault_prefix(p, "one") + "7@example.com"
        r.check("%s: one refused message fails alone, at once (%s); the other %d sent once"
                % (p, dead[0][2][:90] if dead else None, sent),
                sent == NF - 1 and failed == 1 and len(dead) == 1 and dead[0][0] == bad and dead[0][1] == 1
                and len(rc) == NF - 1 and len(set(rc)) == NF - 1 and bad not in rc,
                (sent, failed, len(rc), dead))

    # a refused credential: every message dead at once, naming the integration
    start_fault_phase(db, api, "auth", [], lambda p: PROVIDERS[p][2])
    for p in PROVIDERS:
        sent, failed, retried, rc, dead = outcome(db, api, p, "auth")
        errs = {d[2] for d in dead}
        r.check("%s: a refused credential fails all %d at once, not retried (%s)" % (p, len(dead), sorted(errs)[:1]),
                sent == 0 and failed == NF and len(dead) == NF and max(d[1] for d in dead) == 1
                and all('integration "bad"' in e for e in errs) and not rc, (sent, failed, len(dead), errs))
    http("POST", api + "/_mock/faults", [])


def ses_local_dir():
    """aws-ses-v2-local from npm, installed once under /tmp (None: npm is not available)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        return None, "npm is not installed"
    d = os.environ.get("BE_SES_LOCAL_DIR", "/tmp/be-aws-ses-v2-local")
    cli = os.path.join(d, "node_modules", "aws-ses-v2-local", "dist", "cli.js")
    if not os.path.exists(cli):
        res = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", d,
                              "aws-ses-v2-local@2"], capture_output=True, text=True, timeout=300)
        if res.returncode != 0 or not os.path.exists(cli):
            raise RuntimeError("npm install aws-ses-v2-local failed: %s" % res.stderr[-500:])
    return cli, None


def run_ses_local(r, db):
    cli, why = ses_local_dir()
    if cli is None:
        print("# skip: SES against aws-ses-v2-local: %s" % why)
        return
    port = free_port()
    srv = subprocess.Popen(["node", cli, "--host", "127.0.0.1", "--port", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d" % port
    try:
        def up():
            try:
                with urllib.request.urlopen(base + "/health-check", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False
        wait_for("aws-ses-v2-local listening", up, 30)
        n = 200
        ws = "seslocal"
        setup_ws(db, ws, n, "sl.")
        cfg = {"endpoint": base, "region": "us-east-1", "access_key_id": "AKIDLOCAL"}
        db.q("SELECT broadcast.create_integration(%s, 'local', 'ses', %s::jsonb, 'local-secret')", ws, json.dumps(cfg))
        send(db, ws, "local")
        wait_for("aws-ses-v2-local broadcast completed", lambda: db.one(
            "SELECT status FROM broadcast.broadcasts WHERE workspace_id = %s", ws) == "completed", 120)
        with urllib.request.urlopen(base + "/store", timeout=10) as resp:
            store = json.loads(resp.read())["emails"]
        hist = dict(db.q("SELECT email, provider_message_id FROM broadcast.message_history"
                         " WHERE workspace_id = %s AND status = 'sent'", ws))
        bad = []
        for e in store:
            to = e["destination"]["to"]
            rcpt = email.utils.parseaddr(to[0])[1] if to else None
            i = rcpt[3:rcpt.index("@")] if rcpt else "?"
            if e["subject"] != "Hello Name%s" % i or ("#%s<" % i) not in (e["body"].get("html") or "") \
                    or hist.get(rcpt) != e["messageId"]:
                bad.append((rcpt, e["subject"], e["messageId"], hist.get(rcpt)))
        rc = [email.utils.parseaddr(e["destination"]["to"][0])[1] for e in store]
        r.check("ses: aws-ses-v2-local received all %d messages once, personalised, its MessageIds in history"
                % len(store), len(store) == n and len(set(rc)) == n and not bad and len(hist) == n,
                (len(store), len(hist), bad[:2]))
    finally:
        srv.terminate()
        srv.wait(10)
