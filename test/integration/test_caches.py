"""The senders' caches never serve the past (issue 11, section 2; section 5, `shared`).

Two SMTP sinks, A and B.  Covers:
- a workspace dropped and made again under the same ids, with other content
  and its integration on the other sink, and its broadcast scheduled again at
  once: every message of the new tenant carries the new content and reaches
  the new sink, none the old one; the same after DROP EXTENSION / CREATE
  EXTENSION (in one transaction, so no sender notices the extension missing);
- update_integration mid-send (a rotated password, then a new endpoint): later
  batches use the new settings within a deadline far below the old TTL;
- a workspace setting (unsubscribe_base_url) changed mid-send;
- a workspace named "shared" and a shared integration with the same id as its
  integration: separate rate-limit buckets in broadcast.rate_limits().
Sends are rate limited with small batches so that they are still running
when the change is made; every wait polls with a deadline.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
PY = sys.executable
BATCH = 5
SENDERS = 2
# far below the old 10 s (integrations) and 60 s (broadcasts) cache lifetimes
APPLY_DEADLINE = 4


def start_sink():
    p = subprocess.Popen([PY, os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("smtp sink did not start: %r" % line)
    f = dict(kv.split("=") for kv in line.split()[1:])
    return p, int(f["port"]), "http://127.0.0.1:%s" % f["http"]


def messages(sink_http, prefix):
    """The sink's messages to recipients starting with prefix, in arrival order."""
    with urllib.request.urlopen(sink_http + "/_mock/messages", timeout=10) as r:
        got = json.loads(r.read())
    got = got.get("messages", got) if isinstance(got, dict) else got
    return [m for m in got if (m.get("recipient") or "").startswith(prefix)]


def smtp_cfg(port, username=None):
    cfg = {"host": "127.0.0.1", "port": port, "tls": "none"}
    if username:
        cfg["username"] = username
    return json.dumps(cfg)


def make_tenant(db, ws, n, prefix, content, port, unsub="https://example.test/u", rate=None, secret=None,
                username=None):
    db.q("""SELECT broadcast.create_workspace(%s, %s, 'UTC', jsonb_build_object(
              'sending_domain', 'news.example.test', 'unsubscribe_base_url', %s::text,
              'default_from_email', 'news@example.test'))""", ws, "Tenant " + content, unsub)
    db.q("SELECT broadcast.create_list(%s, 'l', %s)", ws, "Readers of " + content)
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name)
            SELECT %s, %s || i || '@example.com', 'N' || i FROM generate_series(1, %s) i""", ws, prefix, n)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT %s, 'l', %s || i || '@example.com' FROM generate_series(1, %s) i""", ws, prefix, n)
    db.q("""SELECT broadcast.create_template(%s, 't', %s,
            '<p>' || %s || ' for {{ contact.first_name | escape }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')""",
         ws, "Subject " + content, content)
    db.q("SELECT broadcast.create_integration(%s, 'mail', 'smtp', %s, %s, %s)",
         ws, smtp_cfg(port, username), secret, rate)


def schedule(db, ws, bid="b"):
    db.q("SELECT broadcast.create_broadcast(%s, %s, %s, '{l}', 'mail', 't')", ws, bid, bid)
    db.q("SELECT broadcast.schedule_broadcast(%s, %s)", ws, bid)


def status(db, ws, bid="b"):
    return db.row("SELECT status, sent_count, failed_count FROM broadcast.broadcasts"
                  " WHERE workspace_id = %s AND broadcast_id = %s", ws, bid)


def completed(db, ws, n, timeout=60):
    wait_for("%s completed" % ws, lambda: status(db, ws) == ("completed", n, 0), timeout)


def carries(m, content):
    return m.get("subject") == "Subject " + content and content in (m.get("html") or "")


def run(r):
    sink_a, port_a, http_a = start_sink()
    sink_b, port_b, http_b = start_sink()
    c = Cluster(55100, conf={
        "broadcast_engine.sender_workers": str(SENDERS),
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.sender_batch_size": str(BATCH),
        "broadcast_engine.retry_base": "'200ms'",
        "broadcast_engine.drain_poll": "'300ms'",
        "broadcast_engine.scheduler_tick": "'500ms'",
        "broadcast_engine.request_timeout": "'5s'",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("%d senders" % SENDERS, lambda: db.one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'broadcast_engine sender%%'") == SENDERS, 30)
        # each scenario on its own: a timeout in one still lets the others run
        r.run("scenario: re-created workspace and extension", recreated, r, db, c,
              (port_a, http_a), (port_b, http_b))
        r.run("scenario: key rotation and new endpoint mid-send", rotation, r, db,
              (port_a, http_a), (port_b, http_b))
        r.run("scenario: settings change mid-send", settings, r, db, (port_a, http_a))
        r.run("scenario: workspace named shared", shared_keys, r, db, port_a)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(30).splitlines()))
        raise
    finally:
        c.destroy()
        sink_a.kill()
        sink_b.kill()


def recreated(r, db, c, a, b):
    """drop_workspace and DROP/CREATE EXTENSION, then the same ids again at once."""
    (port_a, http_a), (port_b, http_b) = a, b
    n = 20
    make_tenant(db, "w9", n, "old", "old-content", port_a)
    schedule(db, "w9")
    completed(db, "w9", n)
    got = messages(http_a, "old")
    r.check("recreate: the first tenant's %d messages reached sink A" % n,
            len(got) == n and all(carries(m, "old-content") for m in got), len(got))

    db.q("SELECT broadcast.drop_workspace('w9')")
    make_tenant(db, "w9", n, "new", "new-content", port_b)
    schedule(db, "w9")
    completed(db, "w9", n)
    on_b = messages(http_b, "new")
    on_a = messages(http_a, "new")
    r.check("recreate: all %d messages of the new w9 reached sink B (B %d, A %d)" % (n, len(on_b), len(on_a)),
            len(on_b) == n and not on_a, (len(on_b), len(on_a)))
    stale = [m.get("subject") for m in on_a + on_b if not carries(m, "new-content")]
    r.check("recreate: every message of the new w9 carries the new content", not stale and on_a + on_b, stale[:3])

    # the extension dropped and created again: the caches of the second tenant must go too
    conn = c.connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute("DROP EXTENSION broadcast_engine")
        cur.execute("CREATE EXTENSION broadcast_engine")
    conn.commit()
    conn.close()
    make_tenant(db, "w9", n, "ext", "third-content", port_a)
    schedule(db, "w9")
    completed(db, "w9", n)
    on_a = messages(http_a, "ext")
    on_b = messages(http_b, "ext")
    r.check("re-created extension: all %d messages reached sink A (A %d, B %d)" % (n, len(on_a), len(on_b)),
            len(on_a) == n and not on_b, (len(on_a), len(on_b)))
    stale = [m.get("subject") for m in on_a + on_b if not carries(m, "third-content")]
    r.check("re-created extension: every message carries the third tenant's content", not stale and on_a + on_b,
            stale[:3])


def after_first(msgs, pred):
    """The messages after the first one matching pred (None when none does)."""
    for i, m in enumerate(msgs):
        if pred(m):
            return msgs[i + 1:]
    return None


def rotation(r, db, a, b):
    """A rotated password, then a new endpoint, while a rate-limited send runs."""
    (port_a, http_a), (port_b, http_b) = a, b
    n = 160
    make_tenant(db, "rot", n, "rot", "rot-content", port_a, rate=20, secret="key-1", username="mailer")
    schedule(db, "rot")
    wait_for("rotation: the send under way", lambda: len(messages(http_a, "rot")) >= 15, 30)

    db.q("SELECT broadcast.update_integration('rot', 'mail', secret => 'key-2')")
    t0 = time.time()
    wait_for("a message sent with the rotated password", lambda: any(
        m.get("auth_password") == "key-2" for m in messages(http_a, "rot")), APPLY_DEADLINE)
    r.check("rotation: the new password is used %.1fs after update_integration" % (time.time() - t0), True)

    db.q("SELECT broadcast.update_integration('rot', 'mail', config => %s)", smtp_cfg(port_b, "mailer"))
    t0 = time.time()
    wait_for("a message at the new endpoint", lambda: messages(http_b, "rot"), APPLY_DEADLINE)
    r.check("endpoint: the new server gets mail %.1fs after update_integration" % (time.time() - t0), True)
    r.check("endpoint: the send was still running when the endpoint changed (so later batches moved)",
            status(db, "rot")[0] == "processing", status(db, "rot"))

    completed(db, "rot", n, 90)
    on_a = messages(http_a, "rot")
    on_b = messages(http_b, "rot")
    # a batch per sender may already have been in flight when the change committed
    late_old_key = [m for m in after_first(on_a, lambda m: m.get("auth_password") == "key-2")
                    if m.get("auth_password") != "key-2"]
    r.check("rotation: after the first message with the new password, at most %d used the old one (%d)"
            % (SENDERS * BATCH, len(late_old_key)), len(late_old_key) <= SENDERS * BATCH, len(late_old_key))
    rcpts = [m["recipient"] for m in on_a + on_b]
    r.check("endpoint: every recipient got one message across both servers (A %d, B %d)" % (len(on_a), len(on_b)),
            len(rcpts) == n and len(set(rcpts)) == n, (len(rcpts), len(set(rcpts))))
    r.check("endpoint: the new server's messages use the new password too",
            all(m.get("auth_password") == "key-2" for m in on_b), [m.get("auth_password") for m in on_b[:3]])


def settings(r, db, a):
    """The workspace's unsubscribe_base_url changed mid-send."""
    port_a, http_a = a
    n = 160
    make_tenant(db, "set", n, "set", "set-content", port_a, unsub="https://old.example.test/u", rate=20)
    schedule(db, "set")
    wait_for("settings: the send under way", lambda: len(messages(http_a, "set")) >= 15, 30)

    def new_url(m):
        return (m.get("list_unsubscribe") or "").startswith("<https://new.example.test/u/")

    db.q("""UPDATE broadcast.workspaces
               SET settings = settings || '{"unsubscribe_base_url": "https://new.example.test/u"}'
             WHERE workspace_id = 'set'""")
    t0 = time.time()
    wait_for("a message with the new unsubscribe URL", lambda: any(new_url(m) for m in messages(http_a, "set")),
             APPLY_DEADLINE)
    r.check("settings: the new unsubscribe URL is used %.1fs after the change" % (time.time() - t0), True)
    r.check("settings: the send was still running", status(db, "set")[0] == "processing", status(db, "set"))
    completed(db, "set", n, 90)
    msgs = messages(http_a, "set")
    late = [m for m in after_first(msgs, new_url) if not new_url(m)]
    r.check("settings: after the first new URL, at most %d messages carried the old one (%d)"
            % (SENDERS * BATCH, len(late)), len(late) <= SENDERS * BATCH, len(late))
    body_ok = all(("https://new.example.test/u/" in (m.get("html") or "")) == new_url(m) for m in msgs)
    r.check("settings: body links and List-Unsubscribe agree in every message", body_ok)


def shared_keys(r, db, port_a):
    """A workspace named "shared" does not share a bucket with the shared integration of its integration's id."""
    db.q("""SELECT broadcast.create_workspace('shared', 'Shared Ltd', 'UTC',
              '{"default_from_email": "news@example.test", "unsubscribe_base_url": "https://example.test/u"}')""")
    db.q("SELECT broadcast.create_list('shared', 'l', 'Readers')")
    db.q("SELECT broadcast.upsert_contacts('shared', '[{\"email\": \"sh1@example.com\"}, {\"email\": \"sh2@example.com\"}]')")
    db.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email)"
         " SELECT 'shared', 'l', email FROM broadcast.contacts WHERE workspace_id = 'shared'")
    db.q("SELECT broadcast.create_template('shared', 't', 'Hi', '<p>Hi</p>')")
    db.q("SELECT broadcast.create_integration('shared', 'acct', 'smtp', %s, NULL, 5)", smtp_cfg(port_a))

    db.q("SELECT broadcast.create_shared_integration('acct', 'smtp', %s, NULL, 7)", smtp_cfg(port_a))
    db.q("""SELECT broadcast.create_workspace('other', 'Other', 'UTC',
              '{"default_from_email": "news@example.test", "unsubscribe_base_url": "https://example.test/u"}')""")
    db.q("SELECT broadcast.attach_shared_integration('other', 'x', 'acct', 3)")
    db.q("SELECT broadcast.create_list('other', 'l', 'Readers')")
    db.q("SELECT broadcast.upsert_contacts('other', '[{\"email\": \"ot1@example.com\"}, {\"email\": \"ot2@example.com\"}]')")
    db.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email)"
         " SELECT 'other', 'l', email FROM broadcast.contacts WHERE workspace_id = 'other'")
    db.q("SELECT broadcast.create_template('other', 't', 'Hi', '<p>Hi</p>')")

    db.q("SELECT broadcast.create_broadcast('shared', 'b', 'b', '{l}', 'acct', 't')")
    db.q("SELECT broadcast.schedule_broadcast('shared', 'b')")
    db.q("SELECT broadcast.create_broadcast('other', 'b', 'b', '{l}', 'x', 't')")
    db.q("SELECT broadcast.schedule_broadcast('other', 'b')")
    completed(db, "shared", 2)
    completed(db, "other", 2)
    rows = db.q("SELECT scope, workspace_id, integration_id, rate_per_second FROM broadcast.rate_limits()"
                " WHERE integration_id IN ('acct', 'x') ORDER BY 1, 2, 3")
    want = [("shared", "", "acct", 7.0), ("workspace", "other", "x", 3.0), ("workspace", "shared", "acct", 5.0)]
    r.check("shared: the workspace \"shared\", the shared account and the attached workspace have their own buckets",
            rows == want, rows)
