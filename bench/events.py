#!/usr/bin/python3
"""Delivery-event benchmark: provider webhooks applied by broadcast.record_events().

    bench/events.py [small|full] [--port P] [--batch B]

full:  1,000,000 events over 250,000 sent messages; small: 20,000 over 5,000
(a smoke test: no speed assertions).

One throw-away cluster (as in bench/expand.py: postgres OS user, loopback
port, temporary folder removed at the end, workers idle).  The messages'
history rows, contacts and list members exist beforehand (untimed).  The
events are SendGrid Event Webhook arrays of --batch events (default 1,000,
SendGrid's own batch size), shaped as SendGrid posts them (custom_args
carrying our message id), mixed as a newsletter produces them:

    per message: processed + delivered (96%), opened (40%, a third of them
    twice), clicked (10%), bounced (3%: 2% hard, 1% soft), spam report
    (0.1%), unsubscribe (0.2%), deferred (5%)

shuffled (so events arrive out of order) and built before the clock starts.
Measured:
  record_events  every payload through SELECT broadcast.record_events(...),
                 one call (and transaction) per payload, as a web front does
  replay         the first 10% of the payloads again (all no-ops)
  baseline       the naive handler: one UPDATE ... SET <col> = least(...) per
                 event, one transaction each, over the first 2% of the events
                 (same session, same settings, same table)
Checked afterwards: every message's history row holds the earliest time of
each of its events, and every hard bounce / complaint is suppressed.

Exit status 0 when the run completed and checked out, 1 otherwise.
"""
import argparse
import json
import os
import random
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expand import Cluster, Session, free_port, log  # noqa: E402

WS = "bench"
DB = "bench"
T0 = 1700000000


def mid(n):
    return str(uuid.UUID(int=(0x4000 << 64) | n))     # 00000000-0000-4000-0000-<n in hex>


def make_events(messages, target, rng):
    """Events per message until the target count is reached (cycling over messages)."""
    evs = []
    expected = {}        # (n, column) -> earliest time
    suppressed = set()

    def add(n, event, t, **kw):
        e = {"email": "c%07d@example.com" % n, "timestamp": t, "event": event,
             "sg_event_id": "e%d" % len(evs), "sg_message_id": "sg%d.filter0001.16648.5515E0B88.0" % n,
             "message_id": mid(n), "category": ["newsletter"]}
        e.update(kw)
        evs.append(e)
        col = {"delivered": "delivered_at", "open": "opened_at", "click": "clicked_at",
               "bounce": "bounced_at", "spamreport": "complained_at", "unsubscribe": "unsubscribed_at"}.get(event)
        if col:
            k = (n, col)
            expected[k] = min(expected.get(k, t), t)

    n = 0
    while len(evs) < target:
        i = n % messages + 1
        n += 1
        t = T0 + rng.randrange(86400)
        add(i, "processed", t)
        r = rng.random()
        if r < 0.02:
            add(i, "bounce", t + 5, type="bounce", reason="550 5.1.1 unknown user", status="5.1.1")
            suppressed.add(i)
            continue
        if r < 0.03:
            add(i, "bounce", t + 5, type="blocked", reason="421 try later", status="4.2.1")
            continue
        if r < 0.08:
            add(i, "deferred", t + 2, response="400 try again later", attempt="1")
        add(i, "delivered", t + 10, response="250 OK")
        if rng.random() < 0.40:
            add(i, "open", t + 600 + rng.randrange(3600), useragent="Mozilla/5.0", ip="192.0.2.1")
            if rng.random() < 0.33:
                add(i, "open", t + 4000 + rng.randrange(3600), useragent="Mozilla/5.0", ip="192.0.2.1")
            if rng.random() < 0.25:
                add(i, "click", t + 700 + rng.randrange(3600), url="https://example.com/a")
        if rng.random() < 0.001:
            add(i, "spamreport", t + 9000)
            suppressed.add(i)
        elif rng.random() < 0.002:
            add(i, "unsubscribe", t + 9000)
    evs = evs[:target]
    rng.shuffle(evs)
    # recompute what the kept events imply
    expected = {}
    suppressed = set()
    cols = {"delivered": "delivered_at", "open": "opened_at", "click": "clicked_at",
            "bounce": "bounced_at", "spamreport": "complained_at", "unsubscribe": "unsubscribed_at"}
    for e in evs:
        n = int(e["email"][1:8])
        col = cols.get(e["event"])
        if col:
            k = (n, col)
            expected[k] = min(expected.get(k, e["timestamp"]), e["timestamp"])
        if e["event"] == "spamreport" or (e["event"] == "bounce" and e.get("type") == "bounce"):
            suppressed.add(n)
    return evs, expected, suppressed


def setup(s, messages):
    s.q("CREATE EXTENSION broadcast_engine")
    s.q("SELECT broadcast.create_workspace(%s, 'Bench')", WS)
    s.q("SELECT broadcast.create_list(%s, 'l', 'L')", WS)
    s.q("SELECT broadcast.create_integration(%s, 'sg', 'sendgrid', '{}', 'key')", WS)
    s.q("INSERT INTO broadcast.contacts (workspace_id, email) "
        "SELECT %s, format('c%%s@example.com', lpad(n::text, 7, '0')) FROM generate_series(1, %s) n", WS, messages)
    s.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email) "
        "SELECT %s, 'l', format('c%%s@example.com', lpad(n::text, 7, '0')) FROM generate_series(1, %s) n",
        WS, messages)
    s.q("INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id, template_id, variation,"
        " list_id, email, integration_id, provider, provider_message_id, status, sent_at) "
        "SELECT %s, ('00000000-0000-4000-0000-' || lpad(to_hex(n), 12, '0'))::uuid,"
        " 'b', 't', 0, 'l', format('c%%s@example.com', lpad(n::text, 7, '0')), 'sg', 'sendgrid', 'sg' || n, 'sent', now()"
        " FROM generate_series(1, %s) n", WS, messages)
    s.q("VACUUM ANALYZE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55996)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    full = args.mode == "full"
    events_n = 1000000 if full else 20000
    messages = events_n // 4
    rng = random.Random(7)

    cluster = Cluster(free_port(args.port))
    ok = True
    try:
        cluster.start()
        admin = Session(cluster.connect("postgres"))
        admin.q("CREATE DATABASE " + DB)
        s = Session(cluster.connect(DB))
        t = time.perf_counter()
        setup(s, messages)
        log("setup: %d messages in %.1fs" % (messages, time.perf_counter() - t))

        evs, expected, suppressed = make_events(messages, events_n, rng)
        payloads = [json.dumps(evs[i:i + args.batch]) for i in range(0, len(evs), args.batch)]
        log("%d events (%s) in %d payloads of %d" % (
            len(evs), ", ".join("%s %d" % (k, sum(1 for e in evs if e["event"] == k))
                                for k in ("processed", "delivered", "open", "click", "bounce", "spamreport",
                                          "unsubscribe", "deferred")), len(payloads), args.batch))

        totals = [0] * 7
        t = time.perf_counter()
        for p in payloads:
            row = s.q("SELECT received, applied, changed, pending, unknown, ignored, suppressed"
                      " FROM broadcast.record_events(%s, 'sg', %s::jsonb)", WS, p)[0]
            totals = [a + b for a, b in zip(totals, row)]
        el = time.perf_counter() - t
        rate = len(evs) / el
        log("record_events: %d events in %.1fs = %.0f events/s (%.1f ms per %d-event payload); "
            "applied %d, rows changed %d, pending %d, unknown %d, ignored %d, suppressed %d"
            % (len(evs), el, rate, 1000 * el / len(payloads), args.batch, totals[1], totals[2], totals[3],
               totals[4], totals[5], totals[6]))

        replay = payloads[:max(1, len(payloads) // 10)]
        changed = 0
        t = time.perf_counter()
        for p in replay:
            changed += s.one("SELECT changed FROM broadcast.record_events(%s, 'sg', %s::jsonb)", WS, p)
        el = time.perf_counter() - t
        n_replay = sum(len(json.loads(p)) for p in replay)
        log("replay: %d events in %.1fs = %.0f events/s, rows changed %d (must be 0)"
            % (n_replay, el, n_replay / el, changed))
        if changed != 0:
            ok = False

        # the naive handler, on a subset, against the same (already updated) table
        cols = {"delivered": "delivered_at", "open": "opened_at", "click": "clicked_at",
                "bounce": "bounced_at", "spamreport": "complained_at", "unsubscribe": "unsubscribed_at"}
        subset = evs[:max(1000, len(evs) // 50)]
        t = time.perf_counter()
        for e in subset:
            col = cols.get(e["event"])
            if col is None:
                continue
            s.q("UPDATE broadcast.message_history SET %s = least(%s, to_timestamp(%%s))"
                " WHERE workspace_id = %%s AND message_id = %%s" % (col, col), e["timestamp"], WS, e["message_id"])
        el = time.perf_counter() - t
        base = len(subset) / el
        log("baseline (one UPDATE per event, own transaction): %d events in %.1fs = %.0f events/s"
            % (len(subset), el, base))
        log("RESULT events: record_events %.0f events/s, naive per-event UPDATE %.0f events/s, ratio %.1fx"
            % (rate, base, rate / base))

        # checks
        got = {}
        for n, d, o, c, b, comp, u in s.q(
                "SELECT substr(email, 2, 7)::int, extract(epoch FROM delivered_at)::bigint,"
                " extract(epoch FROM opened_at)::bigint, extract(epoch FROM clicked_at)::bigint,"
                " extract(epoch FROM bounced_at)::bigint, extract(epoch FROM complained_at)::bigint,"
                " extract(epoch FROM unsubscribed_at)::bigint FROM broadcast.message_history WHERE workspace_id = %s",
                WS):
            for col, v in (("delivered_at", d), ("opened_at", o), ("clicked_at", c), ("bounced_at", b),
                           ("complained_at", comp), ("unsubscribed_at", u)):
                if v is not None:
                    got[(n, col)] = v
        bad = [k for k in set(expected) | set(got) if expected.get(k) != got.get(k)]
        sup = {int(r[0][1:8]) for r in s.q("SELECT email FROM broadcast.suppressions WHERE workspace_id = %s"
                                           " AND reason IN ('hard_bounce', 'complaint')", WS)}
        log("check: %d event columns, %d mismatches; %d addresses to suppress, %d missing"
            % (len(expected), len(bad), len(suppressed), len(suppressed - sup)))
        if bad or suppressed - sup:
            ok = False
            log("first mismatches: %s" % bad[:5])
    except Exception as exc:  # noqa: BLE001
        log("error: %s\n%s" % (exc, cluster.tail_log()))
        ok = False
    finally:
        cluster.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
