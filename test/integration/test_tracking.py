"""Double opt-in and first-party tracking through the edge, with real HTTP clients.

A cluster with the edge on loopback and an SMTP sink.  Double opt-in:
subscribe(double_opt_in => true) leaves the member pending and the sender
delivers the confirmation to the sink; a broadcast sent meanwhile skips the
pending member; GET /c/<token> shows a page and confirms nothing, the POST
confirms (member active, consent with the client's address), a tampered
token gets 400.  Tracking: a broadcast's links arrive rewritten to /t/c/
(the unsubscribe link untouched) with the /t/o/ pixel; a click answers 302
to the signed target (a ?url= in the request changes nothing) and sets
clicked_at; the pixel answers a no-cache 1x1 GIF and sets opened_at; HEAD
records nothing; tampered tokens and a foreign URL signed with another key
get 400 with nothing recorded; curl's click is flagged as a machine's and
per-link statistics count it apart; a contact who opted out gets the
original links and no pixel.  An A/B test by opens: the variation with
more opens, all from Apple's proxy, loses to the one with fewer human opens.
"""
import email
import email.policy
import http.client
import json
import os
import re
import subprocess
import sys
import urllib.request

from belib import DB, ROOT, Cluster, wait_for

MOCKS = os.path.join(ROOT, "test", "mocks")
OFFSET = int(os.environ.get("BE_PORT_OFFSET", "0"))
EDGE_PORT = 56350 + OFFSET
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0 Safari/537.36")


def start_server(args):
    p = subprocess.Popen([sys.executable] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("server did not start: %r" % line)
    return p, dict(kv.split("=") for kv in line.split()[1:])


def req(method, path, body=None, headers=None):
    """One request on a fresh connection, redirects not followed: (status, headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", EDGE_PORT, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def edge_up():
    try:
        return req("GET", "/metrics")[0] == 200
    except OSError:
        return False


def sink_messages(sinkf):
    with urllib.request.urlopen("http://127.0.0.1:%s/_mock/messages" % sinkf["http"], timeout=10) as resp:
        msgs = json.loads(resp.read())
    return msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs


def html_of(raw):
    msg = email.message_from_bytes(raw.encode("utf-8"), policy=email.policy.default)
    part = msg.get_body(preferencelist=("html",))
    return part.get_content() if part else ""


def mails_to(sinkf, rcpt, subject_part):
    out = []
    for m in sink_messages(sinkf):
        if m["recipient"] != rcpt:
            continue
        msg = email.message_from_bytes(m["raw"].encode("utf-8"), policy=email.policy.default)
        if subject_part in str(msg["Subject"]):
            out.append(html_of(m["raw"]))
    return out


def path_of(url):
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def tamper(path):
    i = len(path) - 30
    return path[:i] + ("A" if path[i] != "A" else "B") + path[i + 1:]


def status(db, addr):
    return db.one("SELECT status FROM broadcast.list_members WHERE workspace_id = 'tr' AND list_id = 'l'"
                  " AND email = %s", addr)


def run(r):
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    c = Cluster(56300, conf={
        "broadcast_engine.http_listen": "'127.0.0.1:%d'" % EDGE_PORT,
        "broadcast_engine.sender_workers": "1",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.drain_poll": "'500ms'",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("the edge serving /metrics", edge_up, 60)
        setup(db, sinkf)
        run_optin(r, db, sinkf)
        run_tracking(r, db, sinkf)
        run_ab(r, db, sinkf)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
        raise
    finally:
        c.destroy()
        sink.kill()


def setup(db, sinkf):
    base = "http://127.0.0.1:%d" % EDGE_PORT
    db.q("""SELECT broadcast.create_workspace('tr', 'Tracking', 'UTC', jsonb_build_object(
            'unsubscribe_base_url', %s, 'default_from_email', 'news@example.test'))""", base + "/u")
    db.q("SELECT broadcast.create_list('tr', 'l', 'Readers')")
    db.q("SELECT broadcast.create_integration('tr', 'smtp', 'smtp', %s)",
         json.dumps({"host": "127.0.0.1", "port": int(sinkf["port"]), "tls": "none"}))
    # the confirmation renders a snippet: the opt-in broadcast pins it too
    db.q("""SELECT broadcast.create_template('tr', 'legal', 'legal', '<p>Sent by Tracking Ltd</p>')""")
    db.q("""SELECT broadcast.create_template('tr', 'confirm', 'Please confirm {{list.name}}',
            '<html><body><p><a href="{{confirm_url}}">Confirm</a> <a href="https://help.example/">Help</a></p>'
            '{% render ''legal'' %}</body></html>')""")
    db.q("""SELECT broadcast.update_workspace('tr', jsonb_build_object(
            'double_opt_in', jsonb_build_object('template_id', 'confirm', 'integration_id', 'smtp',
                                                'base_url', %s, 'page', '{"done": "Welcome aboard"}'::jsonb),
            'tracking', jsonb_build_object('enabled', true, 'base_url', %s)))""", base + "/c", base + "/t")
    db.q("SELECT broadcast.subscribe('tr', 'l', ARRAY['old@example.com', 'optout@example.com'])")
    db.q("""SELECT broadcast.upsert_contacts('tr', '[{"email": "optout@example.com",
            "properties": {"tracking_opt_out": true}}]')""")


def run_optin(r, db, sinkf):
    db.q("SELECT broadcast.subscribe('tr', 'l', ARRAY['new@example.com'], double_opt_in => true,"
         " source_ip => '192.0.2.10')")
    r.check("double opt-in: the member is pending", status(db, "new@example.com") == "pending",
            status(db, "new@example.com"))
    mails = wait_for("the confirmation in the sink", lambda: mails_to(sinkf, "new@example.com", "Please confirm"), 60)
    html = mails[0]
    links = re.findall(r'href="([^"]+)"', html)
    confirm = [u for u in links if "/c/" in u]
    r.check("the confirmation mail (sent by the sender) carries the signed /c/ link, untracked",
            len(confirm) == 1 and confirm[0].startswith("http://127.0.0.1:%d/c/" % EDGE_PORT)
            and "/t/" not in html and "https://help.example/" in links, links)
    r.check("the confirmation renders its snippet, pinned by the opt-in broadcast",
            "Sent by Tracking Ltd" in html and db.one(
                "SELECT snippets FROM broadcast.broadcast_variations WHERE workspace_id = 'tr'"
                " AND broadcast_id = 'double-opt-in'") == {"legal": 1}, html)
    # the sink has it before the sender's batch commits the history row
    wait_for("the confirmation in the history of the opt-in broadcast", lambda: db.one(
        "SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'tr' AND broadcast_id = 'double-opt-in'"
        " AND email = 'new@example.com' AND status = 'sent'") == 1, 30)
    r.check("the confirmation is in the history of the opt-in broadcast, its queue row gone", db.one(
        "SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'tr'") == 0)

    # a broadcast while pending: not sent to the pending member
    db.q("""SELECT broadcast.create_template('tr', 'early', 'Early news', '<p>Early</p>')""")
    db.q("SELECT broadcast.create_broadcast('tr', 'early', 'Early', '{l}', 'smtp', 'early')")
    db.q("SELECT broadcast.schedule_broadcast('tr', 'early')")
    wait_for("broadcast early completed", lambda: db.one(
        "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'tr' AND broadcast_id = 'early'") == "completed", 60)
    got = [m["recipient"] for m in sink_messages(sinkf) if "Early news" in m["raw"]]
    r.check("a pending member receives no broadcast", sorted(got) == ["old@example.com", "optout@example.com"], got)

    path = path_of(confirm[0])
    st, h, body = req("GET", path, headers={"User-Agent": "Mimecast scanner"})
    r.check("GET /c/<token>: 200 page whose button POSTs; confirms nothing",
            st == 200 and b'<form method="post">' in body and status(db, "new@example.com") == "pending",
            (st, body[:300], status(db, "new@example.com")))
    st, h, body = req("POST", tamper(path), "confirm=yes", {"Content-Type": "application/x-www-form-urlencoded"})
    r.check("POST /c/ with a tampered token: 400, still pending",
            st == 400 and status(db, "new@example.com") == "pending", (st, body[:200]))
    st, h, body = req("POST", path, "confirm=yes", {"Content-Type": "application/x-www-form-urlencoded",
                                                      "X-Forwarded-For": "198.51.100.23"})
    r.check("POST /c/<token>: 200 with the workspace's done text; the member is active",
            st == 200 and b"Welcome aboard" in body and status(db, "new@example.com") == "active",
            (st, body[:300], status(db, "new@example.com")))
    row = db.row("SELECT method, host(request_ip), confirmed_at IS NOT NULL, host(confirm_ip)"
                 " FROM broadcast.export_consents('tr', 'new@example.com')")
    r.check("the consent record: asked from 192.0.2.10, confirmed from the proxy's client address",
            row == ("double", "192.0.2.10", True, "198.51.100.23"), row)
    st, h, body = req("POST", path, "confirm=yes")
    r.check("a second POST of the link: still 200", st == 200, st)


def run_tracking(r, db, sinkf):
    db.q("""SELECT broadcast.create_template('tr', 'news', 'Tracked news',
            '<html><body><p><a href="https://shop.example/a?x=1&amp;y=2">A</a>
             <a href="https://shop.example/b">B</a> <a href="{{unsubscribe_url}}">Unsubscribe</a></p></body></html>')""")
    db.q("SELECT broadcast.create_broadcast('tr', 'news', 'News', '{l}', 'smtp', 'news')")
    db.q("SELECT broadcast.schedule_broadcast('tr', 'news')")
    wait_for("broadcast news completed", lambda: db.one(
        "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'tr' AND broadcast_id = 'news'") == "completed", 60)
    html = mails_to(sinkf, "old@example.com", "Tracked news")[0]
    links = re.findall(r'href="([^"]+)"', html)
    pixel = re.findall(r'<img src="([^"]+/t/o/[^"]+)"', html)
    clicks = [u for u in links if "/t/c/" in u]
    r.check("the links arrive rewritten to /t/c/, the unsubscribe link untouched, with one /t/o/ pixel",
            len(clicks) == 2 and any("/u/" in u for u in links) and len(pixel) == 1
            and "shop.example" not in html, (links, pixel))
    plain = mails_to(sinkf, "optout@example.com", "Tracked news")[0]
    r.check("a contact who opted out (tracking_opt_out) gets the original links and no pixel",
            "https://shop.example/a?x=1&amp;y=2" in plain and "/t/" not in plain, plain[:400])

    mid = db.one("SELECT message_id::text FROM broadcast.message_history WHERE workspace_id = 'tr'"
                 " AND broadcast_id = 'news' AND email = 'old@example.com'")
    # a click within 2 s of sending counts as a machine's: let the message age first
    wait_for("the message older than 2 s", lambda: db.one(
        "SELECT now() - sent_at > interval '2.5 seconds' FROM broadcast.message_history"
        " WHERE workspace_id = 'tr' AND message_id = %s", mid), 30)

    def events():
        return db.one("SELECT coalesce(sum(hits), 0) FROM broadcast.tracked_events WHERE workspace_id = 'tr'")

    # tampered tokens and a foreign URL: refused, nothing recorded
    secret_other = "\\x" + "ab" * 32
    foreign = db.one("SELECT broadcast._signed_token_make('track', %s::bytea, 'tr', '0', 'https://evil.example/', %s)",
                     secret_other, mid)
    before = events()
    answers = [req("GET", tamper(path_of(clicks[0])), headers={"User-Agent": BROWSER})[0],
               req("GET", tamper(path_of(pixel[0])), headers={"User-Agent": BROWSER})[0],
               req("GET", "/t/c/" + foreign, headers={"User-Agent": BROWSER})[0],
               req("GET", "/t/c/not-a-token", headers={"User-Agent": BROWSER})[0]]
    clicked = db.one("SELECT clicked_at FROM broadcast.message_history WHERE workspace_id = 'tr' AND message_id = %s", mid)
    r.check("tampered click and pixel tokens, a foreign URL signed with another key, garbage: 400, nothing recorded",
            answers == [400, 400, 400, 400] and events() == before and clicked is None, (answers, events(), clicked))

    # HEAD answers without recording
    st, h, body = req("HEAD", path_of(pixel[0]), headers={"User-Agent": BROWSER})
    r.check("HEAD on the pixel: 200 image/gif, nothing recorded",
            st == 200 and h.get("content-type") == "image/gif" and events() == before, (st, h, events()))

    # a person's click: redirected to the signed target, whatever the request adds
    st, h, body = req("GET", path_of(clicks[0]) + "?url=https://evil.example/", headers={"User-Agent": BROWSER})
    row = db.row("SELECT clicked_at IS NOT NULL, click_machine FROM broadcast.message_history"
                 " WHERE workspace_id = 'tr' AND message_id = %s", mid)
    r.check("click: 302 to the message's own link (entities decoded), no-store; clicked_at set, human",
            st == 302 and h.get("location") == "https://shop.example/a?x=1&y=2" and "no-store" in h.get("cache-control", "")
            and row == (True, False), (st, h, row))

    # the pixel
    st, h, body = req("GET", path_of(pixel[0]), headers={"User-Agent": BROWSER})
    row = db.row("SELECT opened_at IS NOT NULL, open_machine FROM broadcast.message_history"
                 " WHERE workspace_id = 'tr' AND message_id = %s", mid)
    r.check("pixel: 200 no-cache 1x1 GIF; opened_at set, human",
            st == 200 and h.get("content-type") == "image/gif" and body[:6] == b"GIF89a" and len(body) == 43
            and "no-cache" in h.get("cache-control", "") and h.get("pragma") == "no-cache" and row == (True, False),
            (st, h, body[:10], row))

    # curl follows the second link: flagged as a machine's
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          "http://127.0.0.1:%d%s" % (EDGE_PORT, path_of(clicks[1]))],
                         capture_output=True, text=True, timeout=30)
    r.check("curl's click: 302 to the second link", out.stdout == "302 https://shop.example/b", out.stdout)
    stats = db.q("SELECT link_index, url, clicks, human_clicks FROM broadcast.link_stats('tr', 'news')")
    r.check("per-link statistics: the person's click human, curl's counted apart",
            stats == [(0, "https://shop.example/a?x=1&y=2", 1, 1), (1, "https://shop.example/b", 1, 0)], stats)
    eng = db.row("SELECT opened, human_opened, clicked, human_clicked FROM broadcast.engagement_stats('tr', 'news')"
                 " WHERE template_id IS NULL")
    r.check("engagement statistics: all and human opens and clicks", eng == (1, 1, 1, 1), eng)


def run_ab(r, db, sinkf):
    db.q("SELECT broadcast.create_list('tr', 'ab', 'A/B')")
    db.q("SELECT broadcast.subscribe('tr', 'ab', ARRAY(SELECT 'ab' || i || '@example.com' FROM generate_series(1, 20) i))")
    db.q("SELECT broadcast.create_template('tr', 'red', 'Red news', '<html><body><p>red</p></body></html>')")
    db.q("SELECT broadcast.create_template('tr', 'blue', 'Blue news', '<html><body><p>blue</p></body></html>')")
    db.q("""SELECT broadcast.create_broadcast('tr', 'ab', 'A/B', '{ab}', 'smtp', variations => ARRAY['red', 'blue'],
            ab_sample_percent => 50, ab_metric => 'open', ab_duration => '6 seconds')""")
    db.q("SELECT broadcast.schedule_broadcast('tr', 'ab')")

    def pixels(subject):
        out = []
        for i in range(1, 21):
            for html in mails_to(sinkf, "ab%d@example.com" % i, subject):
                out += re.findall(r'<img src="([^"]+/t/o/[^"]+)"', html)
        return out

    wait_for("the test sample in the sink", lambda: len(pixels("Red news")) + len(pixels("Blue news")) == 10, 60)
    red, blue = pixels("Red news"), pixels("Blue news")
    # red: four opens, all Apple's proxy fetching images; blue: two people
    answers = [req("GET", path_of(u), headers={"User-Agent": "Mozilla/5.0"})[0] for u in red[:4]]
    answers += [req("GET", path_of(u), headers={"User-Agent": BROWSER})[0] for u in blue[:2]]
    winner = db.one("SELECT winner_template_id FROM broadcast.broadcasts WHERE workspace_id = 'tr' AND broadcast_id = 'ab'")
    r.check("ab: the pixels answered before the end of the test period", answers == [200] * 6 and winner is None,
            (answers, winner))
    eng = db.q("SELECT template_id, opened, human_opened, machine_opened FROM broadcast.engagement_stats('tr', 'ab')"
               " WHERE template_id IS NOT NULL ORDER BY 1")
    r.check("ab: red 4 opens, all machines'; blue 2, human", eng == [("blue", 2, 2, 0), ("red", 4, 0, 4)], eng)
    try:
        win = wait_for("the winner picked", lambda: db.one(
            "SELECT winner_template_id FROM broadcast.broadcasts WHERE workspace_id = 'tr' AND broadcast_id = 'ab'"), 60)
    except AssertionError:
        print("# %r" % (db.q("SELECT b.status, t.phase, t.status, t.run_at, now(), b.last_error, t.last_error"
                             " FROM broadcast.broadcasts b LEFT JOIN broadcast.tasks t USING (workspace_id, broadcast_id)"
                             " WHERE b.workspace_id = 'tr' AND b.broadcast_id = 'ab'"),))
        raise
    r.check("ab: the winner is picked on human opens: blue", win == "blue", win)
    wait_for("the A/B broadcast completed", lambda: db.one(
        "SELECT status FROM broadcast.broadcasts WHERE workspace_id = 'tr' AND broadcast_id = 'ab'") == "completed", 60)
    r.check("ab: the remaining ten got blue", len(pixels("Blue news")) == 15 and len(pixels("Red news")) == 5,
            (len(pixels("Blue news")), len(pixels("Red news"))))
