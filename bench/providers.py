#!/usr/bin/env python3
"""Sending through each provider's mock: emails per second and API calls.

  bench/providers.py [small|full] [--port P] [--providers a,b,...] [--n N]

For each of the 8 providers (SendGrid, Mailgun, Postmark, SparkPost,
Mailjet, Resend, SES and SMTP) a broadcast of N personalised messages is
expanded into the queue, then sent by CALL broadcast.send_queue() (one
sender in this session, broadcast_engine.sender_batch_size 1000,
max_connections 16) into test/mocks/fastmock: a single-threaded epoll C
server that answers every provider's path with its success shape (one
result per message on the batch paths, each with its own id) and speaks
plain SMTP on a second port (--smtp-port).  fastmock counts, per provider,
the API calls (HTTP requests, or SMTP DATA transactions) and the messages
they carried (GET /_fastmock/stats, zeroed by POST /_fastmock/reset before
each provider).

Reported per provider: emails/s from the first claim to the end of the
last send_queue() call (the queue empty), the API calls and messages
fastmock counted, and the batch limit.  Checked (the run fails otherwise):
every message sent, with a history row holding a provider message id;
fastmock counted exactly N messages; and calls <= ceil(N / batch limit)
(for the one-message-per-call providers, SendGrid, SES and SMTP, that is
calls = N).

Same-run baseline: SendGrid, sent first, on the same cluster, contacts and
template.  It is the one-message-per-call path the engine we re-build uses
for every provider, so each line gives (a) its emails/s as a ratio to
SendGrid's, the cost or gain of the provider's request shape and batching
with the HTTP mock's cost nearly removed, and (b) its calls beside N, the
number of calls without batching (SendGrid's own count).

What is not measured here: per-message correctness against each API (auth,
body shapes, error mapping: test/integration/test_providers.py through
test/mocks/mock_provider.py), and the engine's top speed with 2 senders
(bench/send.py).

small: N = 5,000 (CI, under a minute on 2 cores); full: N = 200,000.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
from belib import DB, Cluster, wait_for  # noqa: E402

# provider -> (config, secret, messages per API call, what the batch is);
# the limits are the providers' batch_max in src/provider_*.c, except
# Mailgun's (as many recipients as fit 16 KB of recipient-variables,
# batch_bytes: about 25 of these messages, so at least 20) and
# SparkPost's (one transmission per distinct message, and each recipient
# has their own unsubscribe link)
PROVIDERS = {
    "sendgrid": ({}, "SG.bench", 1, "1 (`/v3/mail/send`; the baseline)"),
    "mailgun": ({"domain": "mg.bench.test"}, "mg-key", 20,
                "recipients within 16 KB of recipient-variables (max 1,000)"),
    "postmark": ({}, "pm-token", 500, "500 (`/email/batch`)"),
    "sparkpost": ({}, "sp-key", 1, "1 transmission per distinct message (max 1,000 recipients)"),
    "mailjet": ({"api_key": "mj-public"}, "mj-secret", 50, "50 (`/v3.1/send` `Messages[]`)"),
    "resend": ({}, "re_bench", 100, "100 (`/emails/batch`)"),
    "ses": ({"region": "us-east-1", "access_key_id": "AKIDBENCH"}, "ses-secret", 1,
            "1 (`outbound-emails`, raw MIME; bulk is template-only)"),
    "smtp": ({"host": "127.0.0.1", "tls": "none"}, None, 1, "1 (one transaction per message, sessions reused)"),
}


def build_fastmock():
    r = subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "test", "mocks")], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("building fastmock failed: " + r.stderr)
    return os.path.join(ROOT, "test", "mocks", "build", "fastmock")


def http(method, url):
    req = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def setup(db, n):
    db.q("""SELECT broadcast.create_workspace('bench', 'Bench', 'UTC', '{"sending_domain": "news.bench.test",
            "unsubscribe_base_url": "https://bench.test/u", "default_from_email": "news@bench.test",
            "default_from_name": "Bench News"}')""")
    db.q("SELECT broadcast.create_list('bench', 'l', 'Readers')")
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name, properties)
            SELECT 'bench', 'u' || i || '@example.com', (ARRAY['Ada','Grace','Alan','Barbara'])[1 + i %% 4],
                   jsonb_build_object('visits', i %% 40)
              FROM generate_series(1, %s) i""", n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT 'bench', 'l', 'u' || i || '@example.com' FROM generate_series(1, %s) i""", n)
    db.q("""SELECT broadcast.create_template('bench', 't', 'Your week, {{ contact.first_name }}',
            '<h1>Hello {{ contact.first_name | escape }}</h1><p>You visited {{ contact.visits }} times.</p>'
            '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')""")
    db.q("VACUUM ANALYZE")


def one(db, api, smtp_port, p, n, base):
    cfg, secret, limit, _ = PROVIDERS[p]
    cfg = dict(cfg)
    if p == "smtp":
        cfg["port"] = smtp_port
    else:
        cfg["endpoint"] = api
    http("POST", api + "/_fastmock/reset")
    if secret is None:
        db.q("SELECT broadcast.create_integration('bench', %s, %s, %s::jsonb)", p, p, json.dumps(cfg))
    else:
        db.q("SELECT broadcast.create_integration('bench', %s, %s, %s::jsonb, %s)", p, p, json.dumps(cfg), secret)
    db.q("SELECT broadcast.create_broadcast('bench', %s, %s, ARRAY['l'], %s, 't')", p, p, p)
    db.q("SELECT broadcast.schedule_broadcast('bench', %s)", p)
    wait_for("%s expanded" % p, lambda: db.one(
        "SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'bench' AND broadcast_id = %s", p) == n,
        1800, 0.2)
    t0 = time.time()
    while db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'bench'"
                 " AND broadcast_id = %s AND status IN ('pending', 'sending')", p) > 0:
        if time.time() - t0 > 3000:
            raise RuntimeError("%s: not sent within 3000 s" % p)
        db.q("CALL broadcast.send_queue(600)")
    took = time.time() - t0
    sent, with_id, ids = db.row(
        "SELECT count(*) FILTER (WHERE status = 'sent'),"
        "       count(*) FILTER (WHERE status = 'sent' AND coalesce(provider_message_id, '') <> ''),"
        "       count(DISTINCT provider_message_id)"
        "  FROM broadcast.message_history WHERE workspace_id = 'bench' AND broadcast_id = %s", p)
    st = http("GET", api + "/_fastmock/stats")["providers"][p]
    calls, recorded = st["requests"], st["messages"]
    bound = math.ceil(n / limit)
    rate = sent / took
    problems = []
    if sent != n:
        problems.append("%d of %d sent" % (sent, n))
    if with_id != sent:
        problems.append("%d sent without a provider message id" % (sent - with_id))
    if recorded != n:
        problems.append("fastmock counted %d messages" % recorded)
    if calls > bound:
        problems.append("%d calls > bound %d" % (calls, bound))
    print("providers_%s: %d emails in %.1f s = %.0f emails/s (%.2fx SendGrid); %d API calls for %d messages "
          "(batch limit %d, bound ceil(%d/%d) = %d; %.1f calls per 1,000 emails, unbatched: %d); "
          "%d distinct provider ids%s"
          % (p, sent, took, rate, rate / base if base else 1.0, calls, recorded, limit, n, limit, bound,
             1000.0 * calls / max(sent, 1), n, ids, "" if not problems else "  <-- FAILED: " + "; ".join(problems)))
    sys.stdout.flush()
    return not problems, rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55997)
    ap.add_argument("--providers", default=",".join(PROVIDERS),
                    help="comma-separated; sendgrid (the baseline) is always run first")
    ap.add_argument("--n", type=int, help="emails per provider (overrides the mode's)")
    a = ap.parse_args()
    n = a.n or (5000 if a.mode == "small" else 200000)
    names = [p for p in a.providers.split(",") if p]
    bad = [p for p in names if p not in PROVIDERS]
    if bad:
        ap.error("unknown provider(s): %s" % ", ".join(bad))
    names = ["sendgrid"] + [p for p in names if p != "sendgrid"]

    mock = subprocess.Popen([build_fastmock(), "--port", "0", "--smtp-port", "0"], stdout=subprocess.PIPE, text=True)
    ready = mock.stdout.readline()
    if not ready.startswith("READY"):
        raise RuntimeError("fastmock did not start: %r" % ready)
    ports = dict(kv.split("=") for kv in ready.split()[1:])
    api = "http://127.0.0.1:%s" % ports["port"]
    c = Cluster(a.port, conf={
        # one sender: CALL broadcast.send_queue() in this session
        "broadcast_engine.sender_workers": "0",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.allow_private_endpoints": "on",
        "broadcast_engine.sender_batch_size": "1000",
        "broadcast_engine.max_connections": "16",
        "broadcast_engine.request_timeout": "'60s'",
        "broadcast_engine.scheduler_tick": "'1s'",
        "shared_buffers": "1GB",
        "max_wal_size": "8GB",
        "checkpoint_timeout": "'30min'",
        "log_min_messages": "warning",
    })
    failed = 0
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        setup(db, n)
        print("providers: %d emails per provider through test/mocks/fastmock (HTTP, and SMTP on its second port), "
              "one sender, sender_batch_size 1000, 16 connections; load average %s"
              % (n, " ".join(open("/proc/loadavg").read().split()[:3])))
        base = None
        for p in names:
            ok, rate = one(db, api, int(ports["smtp"]), p, n, base)
            if p == "sendgrid":
                base = rate
            if not ok:
                failed += 1
    finally:
        c.destroy()
        mock.terminate()
        print("fastmock: " + (mock.communicate(timeout=10)[0].strip().replace("\n", " ")))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
