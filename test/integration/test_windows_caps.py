"""Sending windows, hourly and daily caps and warm-up, with the sender workers.

Covers (issue 17): with two senders and a restart in between, no hour and no
day sends more than its cap (the periods are computed by SQL from now(), so
the test ends an hour or a day by moving the counter rows of the current
period into the past, as the clock would); the warm-up limit of a later day;
mail over a cap or outside its window waits unclaimed, spends no attempt and
goes when allowed; attempts that were not sent do not count; a window respected in two time zones at once (contacts in
a zone where the window is open now and in one where it is closed);
progress and sending_caps say what mail waits for and until when.
"""
import os

from belib import DB, Cluster, wait_for
from test_sender import MOCKS, http, start_server


def sink_recipients(sink_http):
    msgs = http("GET", sink_http + "/_mock/messages")
    msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
    return [m["recipient"] for m in msgs]


def setup(db, ws, tz, emails_tz, smtp_port):
    db.q("""SELECT broadcast.create_workspace(%s, %s, %s, '{"sending_domain": "news.example.test",
            "default_from_email": "news@example.test"}')""", ws, ws, tz)
    db.q("SELECT broadcast.create_list(%s, 'l', 'Readers')", ws)
    for email, ctz in emails_tz:
        db.q("SELECT broadcast.upsert_contacts(%s, jsonb_build_array(jsonb_strip_nulls("
             "jsonb_build_object('email', %s::text, 'timezone', %s::text))))", ws, email, ctz)
    db.q("SELECT broadcast.subscribe(%s, 'l', %s)", ws, [e for e, _ in emails_tz])
    db.q("SELECT broadcast.create_template(%s, 't', 'Hello', '<p>Hi</p>')", ws)
    db.q("SELECT broadcast.create_integration(%s, 'mail', 'smtp', %s)", ws,
         '{"host": "127.0.0.1", "port": %d, "tls": "none"}' % smtp_port)


def progress(db, ws):
    return db.row("SELECT status, sent, waiting_for, waiting_until FROM broadcast.progress"
                  " WHERE workspace_id = %s AND broadcast_id = 'b'", ws)


def completed(db, ws):
    return db.one("SELECT status = 'completed' FROM broadcast.broadcasts WHERE workspace_id = %s", ws)


def counts(db, ws):
    return db.q("SELECT period, starts_at, sent FROM broadcast.send_counts WHERE workspace_id = %s"
                " ORDER BY period, starts_at", ws)


def run(r):
    sink, sinkf = start_server([os.path.join(MOCKS, "smtp_sink.py"), "--port", "0", "--http-port", "0"])
    smtp_port, sink_http = int(sinkf["port"]), "http://127.0.0.1:%s" % sinkf["http"]
    c = Cluster(56400, conf={
        "broadcast_engine.sender_workers": "2",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.sender_batch_size": "4",
        "broadcast_engine.drain_poll": "'500ms'",
        "broadcast_engine.retry_base": "'200ms'",
    })
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        wait_for("two senders", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                               " WHERE backend_type LIKE 'broadcast_engine sender%%'") == 2, 30)
        r.run("caps: no hour and no day above its cap, two senders and a restart", caps, r, c, sink_http, smtp_port)
        db = DB(c.connect())
        http("POST", sink_http + "/_mock/reset", {})
        r.run("window: respected in two time zones, waiting mail spends no attempt", windows, r, db, sink_http,
              smtp_port)
    finally:
        c.destroy()
        sink.kill()
        sink.wait()


def caps(r, c, sink_http, smtp_port):
    db = DB(c.connect())
    n = 65
    ws = "capped"
    setup(db, ws, "Europe/Paris", [("c%02d@example.com" % i, None) for i in range(n)], smtp_port)
    db.q("SELECT broadcast.set_integration_caps(%s, 'mail', hourly_cap => 20, daily_cap => 50)", ws)
    hour_end, day_end = db.row(
        "SELECT timezone('Europe/Paris', date_trunc('hour', timezone('Europe/Paris', now())) + interval '1 hour'),"
        "       timezone('Europe/Paris', date_trunc('day', timezone('Europe/Paris', now())) + interval '1 day')")
    # two recipients refused once (451): their first attempts are not sent, and go back to the cap
    http("POST", sink_http + "/_mock/faults",
         [{"mode": "rcpt_status", "status": 451, "match_recipient": "c%02d@example.com" % i, "count": 1}
          for i in (0, 1)])
    db.q("SELECT broadcast.create_broadcast(%s, 'b', 'B', '{l}', 'mail', 't')", ws)
    db.q("SELECT broadcast.schedule_broadcast(%s, 'b')", ws)

    # hour 1: 20, then the mail waits for the next hour
    p = wait_for("hourly cap reached", lambda: (lambda p: p if p and p[2] == "hourly cap" and p[1] == 20 else None)(
        progress(db, ws)), 60)
    r.check("caps: progress says 'hourly cap' until the next hour (%s)" % (p,), p[3] == hour_end, p)
    got = sink_recipients(sink_http)
    r.check("caps: 20 messages in the first hour, the refused attempts not counted (%d)" % len(got),
            len(got) == 20, len(got))
    waiting = db.row("SELECT count(*), count(*) FILTER (WHERE attempts > 0 AND email NOT IN"
                     " ('c00@example.com', 'c01@example.com')), count(*) FILTER (WHERE lease_until IS NOT NULL)"
                     " FROM broadcast.email_queue WHERE workspace_id = %s", ws)
    r.check("caps: the other 45 wait unclaimed, no attempt spent (%s)" % (waiting,), waiting == (45, 0, 0), waiting)
    sc = db.row("SELECT hourly_cap, sent_this_hour, daily_cap, sent_today, waiting_for, waiting_until"
                " FROM broadcast.sending_caps WHERE workspace_id = %s", ws)
    r.check("caps: sending_caps reports the figures (%s)" % (sc,),
            sc == (20, 20, 50, 20, "hourly cap", hour_end), sc)
    rl = db.row("SELECT waiting_for, waiting_until, granted > 0 FROM broadcast.rate_limits()"
                " WHERE scope = 'workspace' AND workspace_id = %s", ws)
    r.check("caps: rate_limits() says the pair waits for its hourly cap (%s)" % (rl,),
            rl == ("hourly cap", hour_end, True), rl)

    # a restart; the counts are kept, then the hour ends
    c.stop("fast")
    c.start()
    db = DB(c.connect())
    wait_for("two senders again", lambda: db.one("SELECT count(*) FROM pg_stat_activity"
                                                 " WHERE backend_type LIKE 'broadcast_engine sender%%'") == 2, 30)
    r.check("caps: the counts survive the restart", [x[2] for x in counts(db, ws)] == [20, 20], counts(db, ws))
    end_hour(db, ws)
    wait_for("second hour's 20", lambda: progress(db, ws)[1] == 40 and progress(db, ws)[2] == "hourly cap", 60)
    # the next hour: the day's cap (50) binds after 10
    end_hour(db, ws)
    p = wait_for("daily cap reached", lambda: (lambda p: p if p[2] == "daily cap" and p[1] == 50 else None)(
        progress(db, ws)), 60)
    r.check("caps: progress says 'daily cap' until the next day (%s)" % (p,), p[3] == day_end, p)
    r.check("caps: 50 messages in the day", len(sink_recipients(sink_http)) == 50)

    # the next day, now warming up: day 2 of a schedule from 5, doubling -> 10
    end_day(db, ws)
    db.q("SELECT broadcast.set_integration_caps(%s, 'mail', hourly_cap => 20,"
         " warmup => jsonb_build_object('start', 5, 'factor', 2, 'ceiling', 1000,"
         "                              'started_on', timezone('Europe/Paris', now())::date - 1))", ws)
    p = wait_for("warm-up limit reached", lambda: (lambda p: p if p[2] == "warm-up" and p[1] == 60 else None)(
        progress(db, ws)), 60)
    r.check("caps: progress says 'warm-up' until the next day (%s)" % (p,), p[3] == day_end, p)

    # no period above its cap: every hour <= 20, every day <= its limit; counts match what went
    rows = counts(db, ws)
    hours = [x[2] for x in rows if x[0] == "hour"]
    days = [x[2] for x in rows if x[0] == "day"]
    r.check("caps: hours %s and days %s within their caps" % (hours, days),
            hours == [20, 20, 10, 10] and days == [50, 10], rows)
    got = sink_recipients(sink_http)
    r.check("caps: 60 messages, each to a different recipient (%d, %d distinct)" % (len(got), len(set(got))),
            len(got) == 60 and len(set(got)) == 60)

    # caps removed: the rest goes
    db.q("SELECT broadcast.set_integration_caps(%s, 'mail')", ws)
    wait_for("broadcast completed", lambda: completed(db, ws), 60)
    st = db.row("SELECT status, sent_count FROM broadcast.broadcasts WHERE workspace_id = %s", ws)
    r.check("caps: completed once the caps are lifted (%s)" % (st,), st == ("completed", n), st)
    hist = db.row("SELECT count(*), count(*) FILTER (WHERE attempts = 2 AND email IN"
                  " ('c00@example.com', 'c01@example.com')), max(attempts) FROM broadcast.message_history"
                  " WHERE workspace_id = %s AND status = 'sent'", ws)
    r.check("caps: one attempt per message, two for the refused ones: waiting spent none (%s)" % (hist,),
            hist == (n, 2, 2), hist)


def end_hour(db, ws):
    """The hour ends: its counter row moves into the past, as the clock would."""
    db.q("UPDATE broadcast.send_counts c SET starts_at = c.starts_at - interval '1 hour' * x.k"
         "  FROM (SELECT count(*) AS k FROM broadcast.send_counts WHERE workspace_id = %s AND period = 'hour') x"
         " WHERE c.workspace_id = %s AND c.period = 'hour'"
         "   AND c.starts_at = (SELECT max(starts_at) FROM broadcast.send_counts"
         "                       WHERE workspace_id = %s AND period = 'hour')", ws, ws, ws)
    # the senders hold a capped pair until the period's end: changed settings make them look again
    db.q("SELECT broadcast.set_integration_caps(%s, 'mail', hourly_cap => i.hourly_cap, daily_cap => i.daily_cap,"
         " warmup => i.warmup) FROM broadcast.integrations i WHERE i.workspace_id = %s", ws, ws)


def end_day(db, ws):
    """The day ends: its row, and its hours, move a day into the past."""
    db.q("UPDATE broadcast.send_counts SET starts_at = starts_at - interval '1 day'"
         " WHERE workspace_id = %s", ws)


def windows(r, db, sink_http, smtp_port):
    ws = "win"
    h = db.one("SELECT extract(hour FROM now())::int")

    # a zone where it is 12:xx now (inside 09:00-17:00) and one where it is 00:xx (outside)
    def zone(offset):
        return "UTC" if offset == 0 else "Etc/GMT%s%d" % ("-" if offset > 0 else "+", abs(offset))
    z_in = zone(12 - h)
    z_out = zone(-h if h <= 12 else 24 - h)
    people = [("in%d@example.com" % i, z_in) for i in range(5)] + [("out%d@example.com" % i, z_out) for i in range(5)]
    setup(db, ws, "UTC", people, smtp_port)
    db.q("SELECT broadcast.create_broadcast(%s, 'b', 'B', '{l}', 'mail', 't')", ws)
    db.q("""SELECT broadcast.set_sending_window(%s, 'b', '{"from": "09:00", "to": "17:00", "zone": "recipient"}')""", ws)
    db.q("SELECT broadcast.schedule_broadcast(%s, 'b')", ws)

    p = wait_for("the open zone's mail sent", lambda: (lambda p: p if p[1] == 5 and p[2] == "window" else None)(
        progress(db, ws)), 60)
    got = sorted(sink_recipients(sink_http))
    r.check("window: only the contacts whose window is open got mail (%s, %s)" % (z_in, z_out),
            got == sorted(e for e, z in people if z == z_in), got)
    opening = db.one("SELECT timezone(%s, date_trunc('day', timezone(%s, now())) + interval '9 hours')", z_out, z_out)
    rows = db.q("SELECT email, attempts, lease_until IS NULL, next_attempt_at FROM broadcast.email_queue"
                " WHERE workspace_id = %s ORDER BY email", ws)
    r.check("window: the others wait for 09:00 in their zone, unclaimed, no attempt spent (%s)" % (opening,),
            len(rows) == 5 and all(x[1] == 0 and x[2] and x[3] == opening for x in rows), rows)
    r.check("window: progress says 'window' until it opens (%s)" % (p,), p[3] == opening, p)
    hist = db.one("SELECT count(*) FROM broadcast.message_history WHERE workspace_id = %s AND email LIKE 'out%%'", ws)
    r.check("window: no history for waiting mail", hist == 0, hist)

    # a window open everywhere now: the waiting mail goes at once
    db.q("""SELECT broadcast.set_sending_window(%s, 'b', '{"from": "00:00", "to": "24:00", "zone": "recipient"}')""", ws)
    wait_for("broadcast completed", lambda: completed(db, ws), 60)
    got = sink_recipients(sink_http)
    hist = db.row("SELECT count(*), max(attempts) FROM broadcast.message_history WHERE workspace_id = %s", ws)
    r.check("window: everyone got one message once it opened, in one attempt (%d, %s)" % (len(got), hist),
            len(got) == 10 and len(set(got)) == 10 and hist == (10, 1), (got, hist))
