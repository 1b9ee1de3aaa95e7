"""The sender workers under faults: an immediate shutdown mid-send, and a shared
integration flooded by one workspace.

1. crash: Postgres stopped with `pg_ctl stop -m immediate` while two senders
   have batches in flight at a slow (delayed) SendGrid mock, then started
   again.  The rows that were in flight keep their lease (email_queue.
   lease_until) and are sent again only once it has passed.  Afterwards the
   broadcast is completed, every recipient is at the mock, history has exactly
   one 'sent' row per recipient, the counters equal the recipient count, and
   the duplicates at the mock are no more than what was in flight
   (2 senders x sender_batch_size), each duplicate carrying the same message id.
2. fairness: a shared integration with an account limit of 200/s, attached to
   two workspaces.  Workspace A queues 6,000 messages; once A is sending at the
   account rate, workspace B queues 1,000.  While both have mail queued, B gets
   at least 80% of its fair half of what the mock receives, and the account
   rate holds within 10%; once B is done, A alone gets the whole account rate.
   Both broadcasts complete, each recipient once.
   Measured from the mock's own receive timestamps (the recorder's `ts`).
3. record under a lock: while the senders send, another session holds the
   history's DEFAULT partition (where a new install's history lands) in
   ACCESS EXCLUSIVE mode for 1 s, five times: longer than the senders'
   lock_timeout (300 ms), shorter than their four tries.  A record that times out is tried again (the log
   says so) instead of leaving its batch to be sent a second time: every
   recipient is at the mock exactly once.

Ports: clusters 54361, 54362 and 54363; mocks on free ports.
"""
import datetime
import os
import time
import traceback

from belib import DB, Cluster, wait_for
from test_sender import MOCKS, http, send, setup_ws, start_server, status

BATCH = 100
SENDERS = 2


def mock_messages(api):
    got = http("GET", api + "/_mock/messages?provider=sendgrid")
    return got.get("messages", got) if isinstance(got, dict) else got


def ts(rec):
    """The mock's receive time of a recorded message, in epoch seconds."""
    return datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def start_mock():
    mock, mockf = start_server([os.path.join(MOCKS, "mock_provider.py"), "--port", "0"])
    api = "http://127.0.0.1:%s" % mockf["port"]
    http("POST", api + "/_mock/keys", {"sendgrid": "SG.good"})
    return mock, api


def new_cluster(port, extra=None):
    conf = {
        "broadcast_engine.sender_workers": str(SENDERS),
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.retry_base": "'200ms'",
        "broadcast_engine.drain_poll": "'500ms'",
        "broadcast_engine.request_timeout": "'2s'",
        "broadcast_engine.sender_batch_size": str(BATCH),
    }
    conf.update(extra or {})
    c = Cluster(port, conf=conf)
    c.start()
    DB(c.connect("postgres")).q("CREATE DATABASE be_test")
    db = DB(c.connect())
    db.q("CREATE EXTENSION broadcast_engine")
    wait_for("%d senders" % SENDERS, lambda: db.one(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'broadcast_engine sender%%'") == SENDERS, 30)
    return c, db


def guarded(r, name, fn):
    """Runs one test; a test that cannot finish counts as one failure, with the server log."""
    t0 = time.time()
    state = {}
    try:
        fn(r, state)
    except Exception:
        r.check("%s ran to the end" % name, False, traceback.format_exc().replace("\n", "\n#   "))
        c = state.get("cluster")
        if c is not None:
            print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(40).splitlines()))
    finally:
        if state.get("cluster") is not None:
            state["cluster"].destroy()
        if state.get("mock") is not None:
            state["mock"].kill()
            state["mock"].wait()
    print("# %s took %.1f s" % (name, time.time() - t0))


# ---------------------------------------------------------------------------
# 1. immediate shutdown mid-send


def crash_test(r, state):
    n = 3000
    mock, api = start_mock()
    state["mock"] = mock
    # 50 transfers at once: a batch of 100 goes in 2 rounds, so its lease is
    # (2 + 1) x request_timeout (2 s) + 15 s = 21 s (sender.c, batch_lease_s)
    conns = 50
    lease_s = ((BATCH + conns - 1) // conns + 1) * 2 + 15
    c, db = new_cluster(54361, {"broadcast_engine.max_connections": str(conns),
                                "broadcast_engine.max_connections_per_integration": str(conns),
                                "broadcast_engine.task_lease": "5"})
    state["cluster"] = c
    # every request answered 300 ms late: a batch is in flight for 0.6 s or more
    http("POST", api + "/_mock/faults", [{"provider": "sendgrid", "mode": "slow", "delay_ms": 300, "count": -1}])
    setup_ws(db, "crash", n, "SELECT broadcast.create_integration('crash', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}',"
             " 'SG.good')" % api, prefix="c")
    send(db, "crash", "sg")
    # stop while a batch claimed at least 0.25 s ago is in flight: its claim
    # (committed with synchronous_commit off) has reached the WAL on disk by
    # then (wal_writer_delay is 200 ms), and its transfers have 0.35 s to go
    wait_for("sending under way, a batch in flight", lambda: (status(db, "crash")[1] or 0) >= 500 and db.one(
        "SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'crash' AND lease_until > now()"
        " AND lease_until <= now() + make_interval(secs => %s)", lease_s - 0.25) > 0, 60, interval=0.02)
    in_flight_before = db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'crash'"
                              " AND lease_until > now()")
    db.close()
    c.stop("immediate")
    t_stop = time.time()
    at_mock_at_stop = len(mock_messages(api))
    c.start()
    db = DB(wait_for("a connection after the restart", lambda: c.connect(), 60))
    t_restart = time.time()
    sent_after, _failed, _total = status(db, "crash")[1:]
    # rows that were in flight at the stop: their lease survived the crash
    # (a claim made since the restart has a lease ending after t_stop + lease_s)
    leased = db.q("SELECT message_id::text, lease_until FROM broadcast.email_queue WHERE workspace_id = 'crash'"
                  " AND lease_until > now() AND lease_until <= to_timestamp(%s) + make_interval(secs => %s)",
                  t_stop, lease_s)
    # (the in-flight batch may or may not have reached the mock yet: its
    # requests are answered 300 ms late, and the mock records on answering)
    r.check("crash: the stop landed mid-send (%d of %d counted sent at restart, %d rows in flight before the stop,"
            " %d still leased after the restart, %d at the mock)"
            % (sent_after, n, in_flight_before, len(leased), at_mock_at_stop),
            0 < sent_after < n and 0 < len(leased) <= SENDERS * BATCH and at_mock_at_stop >= sent_after,
            (sent_after, in_flight_before, len(leased), at_mock_at_stop))
    http("POST", api + "/_mock/faults", [])
    wait_for("broadcast completed after the restart", lambda: status(db, "crash")[0] == "completed", 90)
    took = time.time() - t_restart
    st = status(db, "crash")
    enq = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'crash'")
    r.check("crash: completed %.1f s after the restart, counters equal the recipients (%s, enqueued %s)"
            % (took, st[1:], enq), st[1:] == (n, 0, n) and enq == n, (st, enq))
    left = db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id = 'crash'")
    r.check("crash: nothing left in the queue (%d)" % left, left == 0, left)

    hist = db.q("SELECT email, message_id::text, status, sent_at FROM broadcast.message_history"
                " WHERE workspace_id = 'crash'")
    sent_rows = [h for h in hist if h[2] == "sent"]
    by_email = {h[0]: h for h in sent_rows}
    expected = {"c%d@example.com" % i for i in range(1, n + 1)}
    r.check("crash: history has exactly one 'sent' row per recipient (%d rows, %d sent, %d distinct)"
            % (len(hist), len(sent_rows), len(by_email)),
            len(hist) == n and len(sent_rows) == n and set(by_email) == expected,
            (len(hist), len(sent_rows), len(by_email)))
    # a leased row was not sent again before its lease ran out
    sent_at = {h[1]: h[3] for h in sent_rows}
    early = [(m, lu, sent_at.get(m)) for (m, lu) in leased if sent_at.get(m) is None or sent_at[m] < lu]
    r.check("crash: rows in flight at the stop were sent again only after their lease (%d early)" % len(early),
            not early, early[:3])

    got = mock_messages(api)
    rc = [m.get("recipient") for m in got]
    dups = len(rc) - len(set(rc))
    r.check("crash: every recipient is at the mock (%d distinct of %d, %d messages)" % (len(set(rc)), n, len(rc)),
            set(rc) == expected, sorted(expected - set(rc))[:5])
    r.check("crash: duplicates (%d) no more than what was in flight (%d senders x %d)" % (dups, SENDERS, BATCH),
            dups <= SENDERS * BATCH, dups)
    ids = {}
    for m in got:
        ids.setdefault(m.get("recipient"), set()).add(m.get("be_message_id"))
    wrong = [(e, s) for e, s in ids.items() if s != {by_email.get(e, (None, None))[1]}]
    r.check("crash: every copy at the mock carries the recipient's one message id from history",
            not wrong, wrong[:3])
    errs = db.one("SELECT count(*) FROM broadcast.tasks WHERE workspace_id = 'crash' AND last_error IS NOT NULL")
    r.check("crash: no task step failed (%d)" % errs, errs == 0, errs)


# ---------------------------------------------------------------------------
# 2. fairness on a shared integration


def fairness_test(r, state):
    rate = 200
    na, nb = 6000, 1000
    mock, api = start_mock()
    state["mock"] = mock
    c, db = new_cluster(54362)
    state["cluster"] = c
    db.q("SELECT broadcast.create_shared_integration('plat', 'sendgrid', '{\"endpoint\": \"%s\"}', 'SG.good', %s)"
         % (api, rate))
    setup_ws(db, "wa", na, "SELECT broadcast.attach_shared_integration('wa', 'plat', 'plat')", prefix="a")
    setup_ws(db, "wb", nb, "SELECT broadcast.attach_shared_integration('wb', 'plat', 'plat')", prefix="b")
    send(db, "wa", "plat")
    # past the bucket's first second of tokens, A sends at the account rate
    wait_for("workspace A sending at the account rate", lambda: (status(db, "wa")[1] or 0) >= 2 * rate, 60)
    send(db, "wb", "plat")
    wait_for("workspace B's broadcast completed", lambda: status(db, "wb")[0] == "completed", 60)
    # then A alone to the end (not cancelled: cancel_broadcast can deadlock
    # with a sender recording its batch, see the report on this suite)
    wait_for("workspace A's broadcast completed", lambda: status(db, "wa")[0] == "completed", 90)
    got = mock_messages(api)

    times_a = sorted(ts(m) for m in got if m["recipient"].startswith("a"))
    times_b = sorted(ts(m) for m in got if m["recipient"].startswith("b"))
    for ws, times, n in (("A", times_a, na), ("B", times_b, nb)):
        st = status(db, "w" + ws.lower())
        distinct = len({m["recipient"] for m in got if m["recipient"].startswith(ws.lower())})
        r.check("fairness: %s's broadcast complete, each of its %d recipients once (%d messages, %d distinct, %s)"
                % (ws, n, len(times), distinct, st[1:]), len(times) == n and distinct == n and st[1:] == (n, 0, n),
                st)

    # the window: both workspaces have mail queued (B from its first to its
    # last message), less half a second at each end for the batches in flight
    w0, w1 = times_b[0] + 0.5, times_b[-1] - 0.5
    span = w1 - w0
    in_a = sum(1 for t in times_a if w0 <= t < w1)
    in_b = sum(1 for t in times_b if w0 <= t < w1)
    total_rate = (in_a + in_b) / span
    share_b = in_b / float(in_a + in_b)
    print("# fairness window %.1f s: A %d (%.1f/s), B %d (%.1f/s), account %.1f/s"
          % (span, in_a, in_a / span, in_b, in_b / span, total_rate))
    r.check("fairness: B has mail queued over a window of %.1f s" % span, span >= 3.0, span)
    r.check("fairness: while A floods the shared account, B gets %.0f%% of it at %.1f/s (fair part 50%%, at least 40%%)"
            % (100 * share_b, in_b / span), share_b >= 0.4, (in_a, in_b, span))
    r.check("fairness: the account rate holds within 10%% while both send: %.1f/s for a limit of %d/s"
            % (total_rate, rate), 0.9 * rate <= total_rate <= 1.1 * rate, (in_a, in_b, span))

    # A alone, from B's last message to A's last
    after = [t for t in times_a if times_b[-1] + 0.5 <= t < times_a[-1] - 0.5]
    a_rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else 0.0
    print("# A alone: %d messages over %.1f s" % (len(after), after[-1] - after[0] if after else 0))
    r.check("fairness: once B is done, A alone gets the whole account rate: %.1f/s (within 10%% of %d/s)"
            % (a_rate, rate), 0.9 * rate <= a_rate <= 1.1 * rate, (len(after), a_rate))


# ---------------------------------------------------------------------------
# 3. the record of a sent batch meets a lock


def record_lock_test(r, state):
    n = 3000
    mock, api = start_mock()
    state["mock"] = mock
    c, db = new_cluster(54363, {"broadcast_engine.lock_timeout": "'300ms'"})
    state["cluster"] = c
    # batches in flight for 0.2 s or more: records come every few tenths
    http("POST", api + "/_mock/faults", [{"provider": "sendgrid", "mode": "slow", "delay_ms": 200, "count": -1}])
    setup_ws(db, "rl", n, "SELECT broadcast.create_integration('rl', 'sg', 'sendgrid', '{\"endpoint\": \"%s\"}',"
             " 'SG.good')" % api, prefix="l")
    send(db, "rl", "sg")
    wait_for("sending under way", lambda: (status(db, "rl")[1] or 0) >= 200, 60, interval=0.02)
    locker = DB(c.connect())
    for _ in range(5):
        locker.q("BEGIN")
        locker.q("LOCK TABLE broadcast.message_history_default IN ACCESS EXCLUSIVE MODE")
        time.sleep(1.0)        # the lock is the point: past the senders' lock_timeout, within their retries
        locker.q("COMMIT")
        time.sleep(0.3)
    locker.close()
    http("POST", api + "/_mock/faults", [])
    wait_for("broadcast completed", lambda: status(db, "rl")[0] == "completed", 120)
    with open(c.log) as f:
        retries = sum(1 for line in f if "will retry to record the results" in line)
    r.check("record lock: records that met the lock were tried again (%d retries logged)" % retries,
            retries > 0, retries)
    got = mock_messages(api)
    rc = [m.get("recipient") for m in got]
    st = status(db, "rl")
    r.check("record lock: every recipient at the mock exactly once (%d messages, %d distinct of %d; %s)"
            % (len(rc), len(set(rc)), n, st[1:]), len(rc) == n and len(set(rc)) == n and st[1:] == (n, 0, n),
            (len(rc), len(set(rc)), st))


def run(r):
    if os.environ.get("BE_IT_ONLY") != "record":
        guarded(r, "sender_faults crash", crash_test)
        guarded(r, "sender_faults fairness", fairness_test)
    guarded(r, "sender_faults record lock", record_lock_test)
