"""Delivery events end to end: real sends through the SendGrid mock, events
recorded in SendGrid's webhook shape, and the audience lock.

Covers: an A/B broadcast (2 variations, 20 % test sample, winner by opens)
whose opens are recorded through broadcast.record_events with the ids in
message_history (our message id, and SendGrid's sg_message_id + address);
the winner is picked automatically at the end of the test period and every
remaining recipient gets the winner's content at the mock.  A hard bounce
and a complaint suppress their addresses and a new broadcast to the same
list skips them.  Events that carry only SendGrid's id, posted while the
sender's batch is still out (one slow request holds it), wait in
pending_events and are applied when the batch commits.  Then, with the
orchestrator driven by hand in a database the workers do not serve, the two
orders of the race between a suppression and an expansion chunk
(docs/guarantees.md, "Suppression and expansion"):
each side waits for the other's lock and the suppressed address is never
left queued; and a sender's history insert never waits for that lock.
"""
import json
import os
import threading
import time

from belib import DB, ROOT, Cluster, wait_for
from test_sender import http, start_server

MOCKS = os.path.join(ROOT, "test", "mocks")
N = 200                 # audience of the A/B broadcast
SAMPLE = 40             # 20 % of it, 20 per variation
AB_SECONDS = 4          # the test period


def mock_messages(api):
    got = http("GET", api + "/_mock/messages?provider=sendgrid")
    return got.get("messages", got) if isinstance(got, dict) else got


def sg_id(pid):
    """SendGrid's sg_message_id: the X-Message-Id the send returned, plus a filter suffix."""
    return "%s.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0" % pid


def bstatus(db, ws, bid):
    return db.row("SELECT status, sent_count, failed_count, total_recipients FROM broadcast.broadcasts"
                  " WHERE workspace_id = %s AND broadcast_id = %s", ws, bid)


def setup_ws(db, api):
    db.q("""SELECT broadcast.create_workspace('ev', 'Events', 'UTC', '{"sending_domain": "news.example.test",
            "unsubscribe_base_url": "https://example.test/u", "default_from_email": "news@example.test"}')""")
    db.q("SELECT broadcast.create_list('ev', 'l', 'Readers')")
    db.q("""INSERT INTO broadcast.contacts (workspace_id, email, first_name)
            SELECT 'ev', 'e' || lpad(i::text, 3, '0') || '@example.com', 'Name' || i FROM generate_series(1, %s) i""", N)
    db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email)
            SELECT 'ev', 'l', 'e' || lpad(i::text, 3, '0') || '@example.com' FROM generate_series(1, %s) i""", N)
    db.q("SELECT broadcast.create_template('ev', 'red', 'Red {{ contact.first_name }}', '<p>variant red</p>')")
    db.q("SELECT broadcast.create_template('ev', 'blue', 'Blue {{ contact.first_name }}', '<p>variant blue</p>')")
    db.q("SELECT broadcast.create_template('ev', 'plain', 'Second issue', '<p>second issue</p>')")
    db.q("SELECT broadcast.create_integration('ev', 'sg', 'sendgrid', %s, 'SG.good')",
         json.dumps({"endpoint": api}))


def test_ab(r, db, api):
    db.q("""SELECT broadcast.create_broadcast('ev', 'ab', 'A/B', '{l}', 'sg', variations => ARRAY['red', 'blue'],
            ab_sample_percent => 20, ab_metric => 'open', ab_duration => %s::interval)""", "%s seconds" % AB_SECONDS)
    db.q("SELECT broadcast.schedule_broadcast('ev', 'ab')")
    wait_for("the test sample sent", lambda: db.one(
        "SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'ev' AND broadcast_id = 'ab'"
        " AND status = 'sent'") == SAMPLE, 60)
    test = db.q("""SELECT email, message_id::text, provider_message_id, template_id,
                          row_number() OVER (PARTITION BY template_id ORDER BY email)
                     FROM broadcast.message_history WHERE workspace_id = 'ev' AND broadcast_id = 'ab'""")
    split = {}
    for t in test:
        split[t[3]] = split.get(t[3], 0) + 1
    r.check("ab: the test sample is split evenly (%s)" % split, split == {"red": 20, "blue": 20}, split)
    r.check("ab: every test message has SendGrid's X-Message-Id in history",
            all(t[2] for t in test), [t for t in test if not t[2]][:2])

    # SendGrid's Event Webhook: processed (ignored) and delivered for every
    # message with our id in custom_args; opens for 3 red and 8 blue
    # messages, red's with only sg_message_id and the address (the lookup
    # by the provider's id), blue's with our id.
    ts = int(time.time())
    events = []
    for email, mid, pid, tmpl, rn in test:
        events.append({"email": email, "timestamp": ts, "event": "processed", "sg_message_id": sg_id(pid),
                       "sg_event_id": "p-" + mid, "message_id": mid})
        events.append({"email": email, "timestamp": ts + 1, "event": "delivered", "sg_message_id": sg_id(pid),
                       "sg_event_id": "d-" + mid, "message_id": mid, "response": "250 OK"})
        if tmpl == "red" and rn <= 3:
            events.append({"email": email, "timestamp": ts + 5, "event": "open", "sg_message_id": sg_id(pid),
                           "sg_event_id": "o-" + mid, "useragent": "Mozilla/5.0", "ip": "192.0.2.1"})
        if tmpl == "blue" and rn <= 8:
            events.append({"email": email, "timestamp": ts + 5, "event": "open", "sg_message_id": sg_id(pid),
                           "sg_event_id": "o-" + mid, "message_id": mid, "useragent": "Mozilla/5.0"})
    res = db.row("SELECT received, applied, changed, pending, unknown, ignored FROM broadcast.record_events('ev', 'sg', %s)",
                 json.dumps(events))
    r.check("ab: record_events applies the SendGrid payload (%s)" % (res,),
            res == (len(events), SAMPLE + 11, SAMPLE, 0, 0, SAMPLE), res)
    again = db.row("SELECT applied, changed FROM broadcast.record_events('ev', 'sg', %s)", json.dumps(events))
    r.check("ab: a replay changes nothing (%s)" % (again,), again == (SAMPLE + 11, 0), again)
    vs = db.q("SELECT variation, template_id, sent, delivered, opened FROM broadcast.variation_stats"
              " WHERE workspace_id = 'ev' AND broadcast_id = 'ab' ORDER BY variation")
    r.check("ab: per-variation counts before the winner (%s)" % (vs,),
            vs == [(0, "red", 20, 20, 3), (1, "blue", 20, 20, 8)], vs)
    early = db.one("SELECT winner_template_id FROM broadcast.broadcasts WHERE workspace_id = 'ev' AND broadcast_id = 'ab'")
    r.check("ab: no winner before the end of the test period", early is None, early)

    wait_for("the winner picked", lambda: db.one(
        "SELECT winner_template_id FROM broadcast.broadcasts WHERE workspace_id = 'ev' AND broadcast_id = 'ab'"),
        AB_SECONDS + 30)
    win = db.row("""SELECT winner_template_id, extract(epoch FROM winner_selected_at - test_completed_at)::float8
                      FROM broadcast.broadcasts WHERE workspace_id = 'ev' AND broadcast_id = 'ab'""")
    r.check("ab: blue (8/20 opens over delivered) wins over red (3/20), %.1f s after the test completed" % win[1],
            win[0] == "blue" and win[1] >= AB_SECONDS - 0.5, win)
    wait_for("the A/B broadcast completed", lambda: bstatus(db, "ev", "ab")[0] == "completed", 60)
    st = bstatus(db, "ev", "ab")
    r.check("ab: counters (%s)" % (st,), st[1:] == (N, 0, N), st)
    vs = db.q("SELECT variation, template_id, winner, sent FROM broadcast.variation_stats"
              " WHERE workspace_id = 'ev' AND broadcast_id = 'ab' ORDER BY variation")
    r.check("ab: per-variation counts at the end: red 20, blue 20 + %d remaining (%s)" % (N - SAMPLE, vs),
            vs == [(0, "red", False, 20), (1, "blue", True, N - SAMPLE + 20)], vs)
    # the statistics read the history in the broadcast's message id range, which the senders widen as they
    # record (both phases, two senders): exactly the lowest and highest id of its rows
    rng = db.row("SELECT b.first_message_id = x.lo AND b.last_message_id = x.hi, x.n"
                 "  FROM broadcast.broadcasts b,"
                 "       (SELECT min(h.message_id::text COLLATE \"C\")::uuid AS lo,"
                 "               max(h.message_id::text COLLATE \"C\")::uuid AS hi,"
                 "               count(*) AS n"
                 "          FROM broadcast.message_history h"
                 "         WHERE h.workspace_id = 'ev' AND h.broadcast_id = 'ab') x"
                 " WHERE b.workspace_id = 'ev' AND b.broadcast_id = 'ab'")
    r.check("ab: the broadcast's message id range is its %d history rows' lowest and highest id" % rng[1],
            rng == (True, N), rng)

    msgs = mock_messages(api)
    by_rcpt = {}
    for m in msgs:
        by_rcpt.setdefault(m.get("recipient"), []).append(m)
    r.check("ab: each of the %d recipients got exactly one message at the mock" % N,
            len(msgs) == N and len(by_rcpt) == N, (len(msgs), len(by_rcpt)))
    sample = {t[0]: t[3] for t in test}
    hist = dict(db.q("SELECT email, message_id::text FROM broadcast.message_history"
                     " WHERE workspace_id = 'ev' AND broadcast_id = 'ab'"))
    wrong = []
    for rcpt, ms in by_rcpt.items():
        m = ms[0]
        want = sample.get(rcpt, "blue")
        if not (m.get("subject", "").startswith(want.capitalize() + " ")
                and "<p>variant %s</p>" % want in (m.get("html") or "")
                and m.get("be_message_id") == hist.get(rcpt)):
            wrong.append((rcpt, want, m.get("subject"), m.get("be_message_id"), hist.get(rcpt)))
    rest = [x for x in by_rcpt if x not in sample]
    r.check("ab: all %d remaining recipients got blue's content, the sample its own variation" % len(rest),
            len(rest) == N - SAMPLE and not wrong, wrong[:3])


def test_bounce(r, db, api):
    hb, sp = "e150@example.com", "e151@example.com"
    rows = dict((e, (mid, pid)) for e, mid, pid in db.q(
        "SELECT email, message_id::text, provider_message_id FROM broadcast.message_history"
        " WHERE workspace_id = 'ev' AND broadcast_id = 'ab' AND email IN (%s, %s)", hb, sp))
    ts = int(time.time())
    events = [
        {"email": hb, "timestamp": ts, "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
         "sg_message_id": sg_id(rows[hb][1]), "sg_event_id": "b-1", "message_id": rows[hb][0]},
        # a complaint that carries only SendGrid's id
        {"email": sp, "timestamp": ts, "event": "spamreport", "sg_message_id": sg_id(rows[sp][1]),
         "sg_event_id": "s-1"},
    ]
    res = db.row("SELECT applied, changed, suppressed FROM broadcast.record_events('ev', 'sg', %s)", json.dumps(events))
    r.check("bounce: a hard bounce and a complaint suppress their addresses (%s)" % (res,), res == (2, 2, 2), res)
    sup = db.q("SELECT email, reason FROM broadcast.suppressions WHERE workspace_id = 'ev' ORDER BY email")
    mem = db.q("SELECT email, status FROM broadcast.list_members WHERE workspace_id = 'ev' AND status <> 'active'"
               " ORDER BY email")
    r.check("bounce: suppressions and member statuses (%s, %s)" % (sup, mem),
            sup == [(hb, "hard_bounce"), (sp, "complaint")] and mem == [(hb, "bounced"), (sp, "complained")],
            (sup, mem))
    hist = db.row("SELECT bounce_type, bounced_at IS NOT NULL FROM broadcast.message_history"
                  " WHERE workspace_id = 'ev' AND email = %s AND broadcast_id = 'ab'", hb)
    r.check("bounce: the history row records a hard bounce", hist == ("hard", True), hist)

    db.q("SELECT broadcast.create_broadcast('ev', 'b2', 'Second', '{l}', 'sg', 'plain')")
    db.q("SELECT broadcast.schedule_broadcast('ev', 'b2')")
    wait_for("the second broadcast completed", lambda: bstatus(db, "ev", "b2")[0] == "completed", 60)
    st = bstatus(db, "ev", "b2")
    r.check("bounce: the new broadcast went to %d of %d (%s)" % (N - 2, N, st,), st[1:] == (N - 2, 0, N - 2), st)
    second = [m.get("recipient") for m in mock_messages(api) if m.get("subject") == "Second issue"]
    r.check("bounce: the mock got %d messages of the new broadcast, none for the bounced or complaining address"
            % len(second), len(second) == N - 2 and len(set(second)) == N - 2 and hb not in second
            and sp not in second, (len(second), hb in second, sp in second))
    n = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'ev' AND broadcast_id = 'b2'"
               " AND email IN (%s, %s)", hb, sp)
    r.check("bounce: no history row for them in the new broadcast", n == 0, n)


def test_pending_by_provider_id(r, db, api):
    """Events with only SendGrid's id, posted while the sender's batch is still out, wait for its history rows."""
    slow = "p20@example.com"
    db.q("""SELECT broadcast.create_workspace('pe', 'Pending', 'UTC', '{"default_from_email": "news@example.test"}')""")
    db.q("SELECT broadcast.create_list('pe', 'l', 'L')")
    db.q("SELECT broadcast.subscribe('pe', 'l', ARRAY(SELECT 'p' || i || '@example.com' FROM generate_series(1, 20) i))")
    db.q("SELECT broadcast.create_template('pe', 't', 'Pending test', '<p>pending</p>')")
    db.q("SELECT broadcast.create_integration('pe', 'sg', 'sendgrid', %s, 'SG.good')", json.dumps({"endpoint": api}))
    # one recipient's request is slow: the batch's history rows commit after it
    http("POST", api + "/_mock/faults", [{"provider": "sendgrid", "mode": "slow", "delay_ms": 4000,
                                          "match_recipient": slow, "count": -1}])
    try:
        db.q("SELECT broadcast.create_broadcast('pe', 'b', 'B', '{l}', 'sg', 't')")
        db.q("SELECT broadcast.schedule_broadcast('pe', 'b')")

        def out_not_recorded():
            got = [m for m in mock_messages(api) if m.get("subject") == "Pending test"]
            if len(got) < 19:
                return None
            have = set(x[0] for x in db.q("SELECT email FROM broadcast.message_history WHERE workspace_id = 'pe'"))
            return [m for m in got if m["recipient"] not in have]
        out = wait_for("19 messages at the mock", out_not_recorded, 30)
        ts = int(time.time())
        events = []
        for m in out:
            events.append({"email": m["recipient"], "timestamp": ts, "event": "delivered",
                           "sg_message_id": sg_id(m["provider_message_id"]), "sg_event_id": "d-" + m["recipient"]})
        events.append({"email": out[0]["recipient"], "timestamp": ts, "event": "bounce", "type": "bounce",
                       "reason": "550 5.1.1 unknown user", "sg_message_id": sg_id(out[0]["provider_message_id"])})
        res = db.row("SELECT applied, pending, unknown FROM broadcast.record_events('pe', 'sg', %s)", json.dumps(events))
        inflight = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = 'pe'")  # 0 or 1
        r.check("provider id: %d events for messages still in the sender's batch are held, none unknown (%s)"
                % (len(events), res,), len(out) >= 1 and res == (0, len(events), 0), (len(out), res, inflight))
    finally:
        http("POST", api + "/_mock/faults", [])
    wait_for("the broadcast completed", lambda: bstatus(db, "pe", "b")[0] == "completed", 60)
    got = db.row("SELECT count(delivered_at) FILTER (WHERE email = ANY (%s)), count(bounced_at)"
                 " FROM broadcast.message_history WHERE workspace_id = 'pe'", [m["recipient"] for m in out])
    left = db.one("SELECT count(*) FROM broadcast.pending_events WHERE workspace_id = 'pe'")
    sup = db.one("SELECT reason FROM broadcast.suppressions WHERE workspace_id = 'pe' AND email = %s",
                 out[0]["recipient"])
    r.check("provider id: applied when the batch committed: %d deliveries, the bounce suppressed, %d left"
            % (got[0], left), got == (len(out), 1) and left == 0 and sup == "hard_bounce", (got, left, sup))


# ---------------------------------------------------------------------------
# The race between a suppression and an expansion chunk.  The database
# "race" has no workers (they serve be_test): run_tasks drives the chunks.
# ---------------------------------------------------------------------------

def bounce_payload(mid):
    return json.dumps({"events": [{"message_id": mid, "event": "bounced", "bounce_type": "hard",
                                   "detail": "550 5.1.1 no such user"}]})


def setup_race(db):
    db.q("SELECT broadcast.create_workspace('rc', 'Race', 'UTC', '{\"default_from_email\": \"news@example.test\"}')")
    db.q("SELECT broadcast.create_list('rc', 'l', 'L')")
    db.q("SELECT broadcast.subscribe('rc', 'l', ARRAY(SELECT format('a%s@example.com', lpad(i::text, 2, '0'))"
         " FROM generate_series(1, 30) i))")
    db.q("SELECT broadcast.create_template('rc', 't', 'T', '<p>t</p>')")
    db.q("SELECT broadcast.create_integration('rc', 'mail', 'smtp', '{\"host\": \"127.0.0.1\"}')")
    # an earlier message to each address the tests bounce, for the events to find
    db.q("""INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, list_id, email,
                integration_id, provider, status, sent_at)
            SELECT 'rc', gen_random_uuid(), 'old', 't', 'l', e, 'mail', 'smtp', 'sent', now()
              FROM unnest(ARRAY['a03@example.com', 'a05@example.com']) e""")


def in_thread(fn):
    box = {}

    def body():
        try:
            box["result"] = fn()
        except Exception as e:  # reported by the test that joins
            box["error"] = e
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, box


def joined(t, box, timeout=30):
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("thread still running after %ss" % timeout)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def run_chunks(c, seconds):
    conn = c.connect("race")
    try:
        with conn.cursor() as cur:
            cur.execute("SET broadcast_engine.chunk_size = 10")
            cur.execute("CALL broadcast.run_tasks(%s)", (seconds,))
    finally:
        conn.close()


def waiting(db, locktype):
    """Backends of the cluster waiting for a lock of that type (nothing else runs meanwhile)."""
    return db.one("SELECT count(*) FROM pg_locks WHERE locktype = %s AND NOT granted", locktype)


def queued(db, bid):
    return [x[0] for x in db.q("SELECT email FROM broadcast.email_queue WHERE workspace_id = 'rc'"
                               " AND broadcast_id = %s ORDER BY email", bid)]


def test_race_suppression_first(r, c, db):
    """A suppression held open: the next chunk waits for it, then skips the address."""
    mid = db.one("SELECT message_id::text FROM broadcast.message_history WHERE workspace_id = 'rc'"
                 " AND email = 'a03@example.com'")
    db.q("SELECT broadcast.create_broadcast('rc', 'r1', 'R1', '{l}', 'mail', 't')")
    db.q("SELECT broadcast.schedule_broadcast('rc', 'r1')")
    s = c.connect("race", autocommit=False)
    try:
        with s.cursor() as cur:
            cur.execute("SELECT suppressed FROM broadcast.record_events('rc', 'mail', %s)", (bounce_payload(mid),))
            sup = cur.fetchone()[0]
        # the chunk does not wait (a tenant could hold that lock open): its
        # task steps aside, visibly, without queueing anything
        run_chunks(c, 2)
        why = db.one("SELECT last_error FROM broadcast.tasks WHERE workspace_id = 'rc' AND broadcast_id = 'r1'")
        before = queued(db, "r1")
        r.check("race 1: the chunk steps aside for the open suppression, nothing queued yet (%d rows: %s)"
                % (len(before), why), sup == 1 and before == [] and why.startswith("waiting for the audience lock"),
                (sup, before, why))
        s.commit()
        db.q("UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'rc' AND broadcast_id = 'r1'")
        run_chunks(c, 2)
    finally:
        s.close()
    q = queued(db, "r1")
    r.check("race 1: after the commit the chunks queued the 29 others and not the suppressed address (%d)" % len(q),
            len(q) == 29 and "a03@example.com" not in q, q[:5])


def test_race_chunk_first(r, c, db):
    """A chunk held open after its INSERT: the suppression waits for it, then drops its row."""
    mid = db.one("SELECT message_id::text FROM broadcast.message_history WHERE workspace_id = 'rc'"
                 " AND email = 'a05@example.com'")
    db.q("SELECT broadcast.create_broadcast('rc', 'r2', 'R2', '{l}', 'mail', 't')")
    # a row for a07 inserted and not committed: the first chunk's INSERT
    # (a01..a10) queues a05 and then waits on a07's key, holding its lock
    h = c.connect("race", autocommit=False)
    try:
        with h.cursor() as cur:
            cur.execute("""INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id,
                                message_id) VALUES ('rc', 'r2', 'a07@example.com', 'mail', 'l', gen_random_uuid())""")
        db.q("SELECT broadcast.schedule_broadcast('rc', 'r2')")
        t, box = in_thread(lambda: run_chunks(c, 5))
        wait_for("the chunk waiting on the held row", lambda: waiting(db, "transactionid") >= 1, 15)

        def suppress():
            conn = c.connect("race")
            try:
                return DB(conn).one("SELECT suppressed FROM broadcast.record_events('rc', 'mail', %s)",
                                    bounce_payload(mid))
            finally:
                conn.close()
        ts, sbox = in_thread(suppress)
        # the chunk waits on a07's key, the suppression on the chunk's share lock of the audience row
        wait_for("the suppression waiting for the chunk's lock", lambda: waiting(db, "transactionid") >= 2, 15)
        r.check("race 2: the suppression waits for the chunk in flight (nothing of r2 committed yet)",
                queued(db, "r2") == [] and ts.is_alive())
        h.rollback()
        joined(t, box)
        sup = joined(ts, sbox)
    finally:
        h.close()
    # a chunk that came while the suppression held the lock stepped aside: finish
    db.q("UPDATE broadcast.tasks SET run_at = now() WHERE workspace_id = 'rc' AND broadcast_id = 'r2'"
         " AND status = 'pending'")
    run_chunks(c, 5)
    q = queued(db, "r2")
    hist = db.row("SELECT reason FROM broadcast.suppressions WHERE workspace_id = 'rc' AND email = 'a05@example.com'")
    # 30 members less a03 (suppressed by race 1) and a05
    r.check("race 2: the suppression's drop removed the chunk's row: 28 queued, a07 included, a05 not (%d)" % len(q),
            sup == 1 and hist == ("hard_bounce",) and len(q) == 28 and "a05@example.com" not in q
            and "a03@example.com" not in q and "a07@example.com" in q, (sup, hist, len(q), q[:6]))


def test_race_trigger(r, c, db):
    """A parked bounce whose history row commits while a chunk holds the lock: the sender does not wait."""
    mid = db.one("SELECT gen_random_uuid()::text")
    evs = json.dumps({"events": [{"message_id": mid, "event": "delivered"},
                                 {"message_id": mid, "event": "bounced", "bounce_type": "hard"}]})
    res = db.row("SELECT applied, pending FROM broadcast.record_events('rc', 'mail', %s)", evs)
    r.check("race 3: events before their history row are parked (%s)" % (res,), res == (0, 2), res)
    h = c.connect("race", autocommit=False)
    try:
        with h.cursor() as cur:   # what a chunk in flight holds
            cur.execute("SELECT broadcast._try_lock_audience('rc', false)")
        s = c.connect("race")
        try:
            with s.cursor() as cur:  # the sender's batch, as its statement would insert it
                cur.execute("SET statement_timeout = '10s'")
                cur.execute("""INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id,
                                   list_id, email, integration_id, provider, status, sent_at)
                               VALUES ('rc', %s, 'old', 't', 'l', 'a09@example.com', 'mail', 'smtp', 'sent', now())""",
                            (mid,))
        finally:
            s.close()
        row = db.row("SELECT delivered_at IS NOT NULL, bounced_at IS NOT NULL FROM broadcast.message_history"
                     " WHERE workspace_id = 'rc' AND message_id = %s", mid)
        left = db.q("SELECT event FROM broadcast.pending_events WHERE workspace_id = 'rc' AND message_id = %s", mid)
        r.check("race 3: the history insert did not wait; the delivery applied, the bounce left parked (%s, %s)"
                % (row, left), row == (True, False) and left == [("bounced",)], (row, left))
    finally:
        h.rollback()
        h.close()
    db.row("SELECT * FROM broadcast.record_events('rc', 'mail', %s)",
           json.dumps({"events": [{"message_id": mid, "event": "delivered"}]}))
    row = db.row("SELECT h.bounce_type, s.reason FROM broadcast.message_history h LEFT JOIN broadcast.suppressions s"
                 " ON s.workspace_id = h.workspace_id AND s.email = h.email"
                 " WHERE h.workspace_id = 'rc' AND h.message_id = %s", mid)
    left = db.one("SELECT count(*) FROM broadcast.pending_events WHERE workspace_id = 'rc'")
    r.check("race 3: the next record_events call applies the parked bounce (%s, %d left)" % (row, left),
            row == ("hard", "hard_bounce") and left == 0, (row, left))


def run(r):
    mock, mockf = start_server([os.path.join(MOCKS, "mock_provider.py"), "--port", "0"])
    api = "http://127.0.0.1:%s" % mockf["port"]
    http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
    c = Cluster(54351, conf={
        "broadcast_engine.sender_workers": "2",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.retry_base": "'200ms'",
        "broadcast_engine.drain_poll": "'300ms'",
        "broadcast_engine.scheduler_tick": "'500ms'",
        "broadcast_engine.sender_batch_size": "50",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        DB(c.connect("postgres")).q("CREATE DATABASE race")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("two senders", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                               " WHERE backend_type LIKE 'broadcast_engine sender%%'") == 2, 30)
        setup_ws(db, api)
        r.run("events: A/B winner by opens recorded from SendGrid events, remainder sent with it",
              test_ab, r, db, api)
        r.run("events: a hard bounce and a complaint are skipped by the next broadcast", test_bounce, r, db, api)
        r.run("events: SendGrid events before their history rows, by provider id", test_pending_by_provider_id,
              r, db, api)

        rdb = DB(c.connect("race"))
        rdb.q("CREATE EXTENSION broadcast_engine")
        setup_race(rdb)
        r.run("events: race, suppression first", test_race_suppression_first, r, c, rdb)
        r.run("events: race, chunk first", test_race_chunk_first, r, c, rdb)
        r.run("events: race, parked bounce and the sender's batch", test_race_trigger, r, c, rdb)
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
        raise
    finally:
        c.destroy()
        mock.kill()
