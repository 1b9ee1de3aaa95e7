"""Snippets and time zones through the sender.

A broadcast scheduled while its template renders snippet version 1 is
sent with version 1 even though the snippet is edited (version 2) before
the send time; a broadcast scheduled after the edit gets version 2.  The
date filter shows each recipient's time zone, else the workspace's.
"""
import email
import email.policy
import os

from belib import DB, Cluster, wait_for
from test_sender import MOCKS, http, start_server


def run(r):
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    c = Cluster(56000, conf={"broadcast_engine.sender_workers": "1",
                             "broadcast_engine.allow_insecure_transport": "on"})
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        db.q("""SELECT broadcast.create_workspace('sn', 'Snippets', 'Europe/Paris', '{"sending_domain": "news.example.test",
                "unsubscribe_base_url": "https://example.test/u", "default_from_email": "news@example.test"}')""")
        db.q("SELECT broadcast.create_list('sn', 'l', 'Readers')")
        db.q("""SELECT broadcast.upsert_contacts('sn', '[{"email": "ny@example.com", "timezone": "America/New_York"},
                {"email": "paris@example.com"}]')""")
        db.q("SELECT broadcast.subscribe('sn', 'l', ARRAY['ny@example.com', 'paris@example.com'])")
        db.q("SELECT broadcast.create_integration('sn', 'mail', 'smtp', '{\"host\": \"127.0.0.1\", \"port\": %s, \"tls\": \"none\"}')"
             % sinkf["port"])
        db.q("SELECT broadcast.create_template('sn', 'footer', '(snippet)', 'FOOTER-V1 {{ who }}')")
        db.q("""SELECT broadcast.create_template('sn', 't', 'At {{ "2026-03-01T10:00:00Z" | date: "%H:%M %Z" }}',
                '<p>Hi</p>{% render ''footer'', who: contact.email %}')""")
        # scheduled a little ahead; the snippet is edited before the send time
        db.q("SELECT broadcast.create_broadcast('sn', 'b1', 'First', '{l}', 'mail', 't')")
        db.q("SELECT broadcast.schedule_broadcast('sn', 'b1', now() + interval '2 seconds')")
        db.q("SELECT broadcast.create_template('sn', 'footer', '(snippet)', 'FOOTER-V2 {{ who }}')")
        pinned = db.one("SELECT snippets::text FROM broadcast.broadcast_variations WHERE workspace_id = 'sn' AND broadcast_id = 'b1'")
        r.check("snippets: version 1 pinned at schedule (%s)" % pinned, pinned == '{"footer": 1}', pinned)
        wait_for("b1 completed", lambda: db.one(
            "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'sn' AND broadcast_id = 'b1'") == "completed", 60)
        db.q("SELECT broadcast.create_broadcast('sn', 'b2', 'Second', '{l}', 'mail', 't')")
        db.q("SELECT broadcast.schedule_broadcast('sn', 'b2')")
        wait_for("b2 completed", lambda: db.one(
            "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'sn' AND broadcast_id = 'b2'") == "completed", 60)

        msgs = http("GET", "http://127.0.0.1:%s/_mock/messages" % sinkf["http"])
        msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
        got = []
        for m in msgs:
            msg = email.message_from_bytes(m["raw"].encode("utf-8"), policy=email.policy.default)
            html = msg.get_body(("html",)).get_content()
            got.append((m["recipient"], str(msg["Subject"]), "V1" if "FOOTER-V1" in html else
                        "V2" if "FOOTER-V2" in html else "none", m["recipient"] in html))
        got.sort()
        want = sorted([("ny@example.com", "At 05:00 EST", "V1", True), ("paris@example.com", "At 11:00 CET", "V1", True),
                       ("ny@example.com", "At 05:00 EST", "V2", True), ("paris@example.com", "At 11:00 CET", "V2", True)])
        r.check("snippets: b1 sent with the pinned v1 after the edit, b2 with v2; dates in each recipient's zone",
                got == want, got)
    finally:
        c.destroy()
        sink.kill()
