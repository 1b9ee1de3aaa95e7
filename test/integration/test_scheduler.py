"""The scheduler worker, durable tasks and the orchestrator, on a live cluster.

Covers: the worker expanding a send-now broadcast by itself (woken on
commit: the tick is set far longer than the test's deadline), fair time
slicing between a big and a small broadcast, pause/resume mid-expansion,
a scheduler killed with SIGKILL and an immediate shutdown mid-expansion
(exactly total_recipients rows afterwards), two executors at once, 10,000
workspaces in one cycle, and DROP DATABASE ... WITH (FORCE) not hanging.
"""
import os
import signal
import threading
import time

from belib import DB, Cluster, setup_audience, wait_for

BIG = int(os.environ.get("BE_IT_BIG", "150000"))


def check_expanded(r, db, ws, b, label):
    total, enq, status = db.row("SELECT total_recipients, enqueued_count, status FROM broadcast.broadcasts"
                                " WHERE workspace_id = %s AND broadcast_id = %s", ws, b)
    rows, distinct = db.row("SELECT count(*), count(DISTINCT email) FROM broadcast.email_queue"
                            " WHERE workspace_id = %s AND broadcast_id = %s", ws, b)
    r.check("%s: queue rows = enqueued_count = total_recipients (%s)" % (label, rows),
            rows == enq == total and rows > 0, (rows, enq, total, status))
    r.check("%s: nobody queued twice" % label, rows == distinct, (rows, distinct))


def schedule(db, ws, b, lists):
    db.q("SELECT broadcast.create_broadcast(%s, %s, %s, %s, 'smtp', 't')", ws, b, b, lists)
    db.q("SELECT broadcast.schedule_broadcast(%s, %s)", ws, b)


def phase(db, ws, b):
    return db.one("SELECT phase FROM broadcast.tasks WHERE workspace_id = %s AND broadcast_id = %s"
                  " ORDER BY task_id DESC LIMIT 1", ws, b)


def worker_pid(db, kind):
    return db.one("SELECT pid FROM pg_stat_activity WHERE backend_type = %s", "broadcast_engine " + kind)


def new_scheduler(c, old_pid):
    """A connection once the cluster is back with a scheduler other than old_pid."""
    conn = c.connect()
    pid = DB(conn).one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'broadcast_engine scheduler'")
    if pid and pid != old_pid:
        return conn
    conn.close()
    return None


def run(r):
    if os.environ.get("BE_IT_ONLY") != "executors":
        run_workers(r)
    run_executors(r)


def run_workers(r):
    c = Cluster(54321, conf={
        "broadcast_engine.sender_workers": "0",
        "broadcast_engine.scheduler_tick": "'60s'",
        "broadcast_engine.chunk_size": "2000",
        "broadcast_engine.time_slice": "'100ms'",
    })
    try:
        c.start()
        admin = DB(c.connect("postgres"))
        admin.q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")

        def workers_listed():
            rows = db.q("SELECT backend_type, application_name FROM pg_stat_activity"
                        " WHERE backend_type LIKE 'broadcast_engine%%'")
            return rows if {"broadcast_engine launcher", "broadcast_engine scheduler"} <= {x[0] for x in rows} else None
        rows = wait_for("launcher and scheduler in pg_stat_activity", workers_listed, 30)
        r.check("workers show their backend_type and application_name",
                ("broadcast_engine scheduler", "broadcast_engine scheduler") in rows, rows)

        # send now: the commit wakes the scheduler (the 60 s tick would be too late)
        setup_audience(db, "s1", ["a", "b"], 3000, overlap=1000)
        schedule(db, "s1", "now", ["a", "b"])
        wait_for("send-now broadcast expanded by the worker",
                 lambda: phase(db, "s1", "now") == "drain", 15)
        check_expanded(r, db, "s1", "now", "send-now")

        # fairness: a small broadcast scheduled after a big one finishes first
        setup_audience(db, "big", ["a", "b"], BIG // 2 + 10000, overlap=20000)
        setup_audience(db, "small", ["a"], 50)
        schedule(db, "big", "b", ["a", "b"])
        wait_for("big broadcast expanding", lambda: db.one(
            "SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'big'") > 0, 20)
        schedule(db, "small", "s", ["a"])
        wait_for("small broadcast expanded", lambda: phase(db, "small", "s") == "drain", 20)
        big_enq, big_total = db.row("SELECT enqueued_count, total_recipients FROM broadcast.broadcasts"
                                    " WHERE workspace_id = 'big'")
        r.check("a 50-recipient broadcast is not held up by a big one (big at %d of %d)" % (big_enq, big_total),
                big_enq < big_total, (big_enq, big_total))
        wait_for("big broadcast expanded", lambda: phase(db, "big", "b") == "drain", 120)
        check_expanded(r, db, "big", "b", "big broadcast")
        check_expanded(r, db, "small", "s", "small broadcast")

        # pause mid-expansion: expansion stops; resume: it finishes exactly
        setup_audience(db, "pz", ["a"], BIG)
        schedule(db, "pz", "p", ["a"])
        wait_for("expansion started", lambda: db.one(
            "SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'pz'") > 0, 20)
        db.q("SELECT broadcast.pause_broadcast('pz', 'p')")
        at_pause = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'pz'")
        wait_for("task parked", lambda: db.one(
            "SELECT status FROM broadcast.tasks WHERE workspace_id = 'pz'") == "paused", 10)
        stable = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'pz'")
        time.sleep(0.5)  # a negative check: nothing may move while paused
        later = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'pz'")
        r.check("pause stops expansion (%d at pause, %d later)" % (at_pause, later),
                later == stable and later <= at_pause + 2000 and later < BIG, (at_pause, stable, later))
        db.q("SELECT broadcast.resume_broadcast('pz', 'p')")
        wait_for("resumed expansion finished", lambda: phase(db, "pz", "p") == "drain", 120)
        check_expanded(r, db, "pz", "p", "paused and resumed")

        # SIGKILL of the scheduler mid-expansion: the postmaster restarts everything
        setup_audience(db, "k9", ["a", "b"], BIG // 2 + 5000, overlap=10000)
        schedule(db, "k9", "k", ["a", "b"])
        wait_for("expansion under way", lambda: db.one(
            "SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'k9'") > 10000, 30)
        pid = worker_pid(db, "scheduler")
        db.close()
        admin.close()
        os.kill(pid, signal.SIGKILL)
        db = DB(wait_for("crash restart and a new scheduler", lambda: new_scheduler(c, pid), 90))
        admin = DB(c.connect("postgres"))
        mid = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'k9'")
        wait_for("expansion finished after SIGKILL", lambda: phase(db, "k9", "k") == "drain", 180)
        r.check("the killed expansion had really stopped part way (%d)" % mid, 0 < mid < BIG, mid)
        check_expanded(r, db, "k9", "k", "after SIGKILL")

        # immediate shutdown mid-expansion
        setup_audience(db, "im", ["a"], BIG)
        schedule(db, "im", "i", ["a"])
        wait_for("expansion under way", lambda: db.one(
            "SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'im'") > 10000, 30)
        db.close()
        admin.close()
        c.stop("immediate")
        c.start()
        db = DB(c.connect())
        admin = DB(c.connect("postgres"))
        mid = db.one("SELECT enqueued_count FROM broadcast.broadcasts WHERE workspace_id = 'im'")
        # the lease of the task the crashed scheduler held must expire before it is taken again
        db.q("ALTER SYSTEM SET broadcast_engine.task_lease = 5")
        db.q("SELECT pg_reload_conf()")
        wait_for("expansion finished after immediate shutdown", lambda: phase(db, "im", "i") == "drain", 180)
        r.check("the interrupted expansion had stopped part way (%d)" % mid, 0 < mid < BIG, mid)
        check_expanded(r, db, "im", "i", "after immediate shutdown")
        r.check("no task recorded an error",
                db.one("SELECT count(*) FROM broadcast.tasks WHERE last_error IS NOT NULL") == 0,
                db.q("SELECT broadcast_id, last_error FROM broadcast.tasks WHERE last_error IS NOT NULL"))

        # DROP DATABASE ... WITH (FORCE) ends the workers promptly instead of hanging
        db.close()
        admin.q("SET statement_timeout = '30s'")
        t0 = time.time()
        admin.q("DROP DATABASE be_test WITH (FORCE)")
        r.check("DROP DATABASE WITH (FORCE) returns with the workers connected (%.1fs)" % (time.time() - t0), True)
        admin.close()
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(60).splitlines()))
        raise
    finally:
        c.destroy()


def run_executors(r):
    """Executors without workers: concurrent CALL run_tasks, and 10,000 workspaces."""
    c = Cluster(54322, dbname="execs", conf={
        "broadcast_engine.database": "'elsewhere'",
        "broadcast_engine.sender_workers": "0",
        "broadcast_engine.chunk_size": "500",
        "broadcast_engine.time_slice": "'20ms'",
        # nothing sends here: a draining broadcast need not be looked at again
        "broadcast_engine.drain_poll": "'1h'",
    })
    try:
        c.start()
        admin = DB(c.connect("postgres"))
        admin.q("CREATE DATABASE execs")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")

        # two executors at once over the same due tasks
        for i in range(20):
            setup_audience(db, "c%02d" % i, ["a", "b"], 1500, overlap=500)
            db.q("SELECT broadcast.create_broadcast(%s, 'b', 'b', '{a,b}', 'smtp', 't')", "c%02d" % i)
        for i in range(20):
            db.q("SELECT broadcast.schedule_broadcast(%s, 'b')", "c%02d" % i)
        errors = []

        def executor():
            try:
                conn = c.connect()
                for _ in range(3):
                    conn.cursor().execute("CALL broadcast.run_tasks(60)")
                conn.close()
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=executor) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        r.check("two concurrent executors ran without error", not errors, errors)
        bad = db.q("""SELECT b.workspace_id, b.total_recipients, b.enqueued_count,
                             (SELECT count(*) FROM broadcast.email_queue q WHERE q.workspace_id = b.workspace_id),
                             (SELECT count(DISTINCT email) FROM broadcast.email_queue q WHERE q.workspace_id = b.workspace_id)
                        FROM broadcast.broadcasts b
                       WHERE b.total_recipients <> 2500 OR b.enqueued_count <> 2500
                          OR (SELECT count(*) FROM broadcast.email_queue q WHERE q.workspace_id = b.workspace_id) <> 2500""")
        r.check("two executors: every broadcast expanded exactly once (20 x 2500 rows)", not bad, bad)
        r.check("two executors: no step failed",
                db.one("SELECT count(*) FROM broadcast.tasks WHERE attempts > 0") == 0)

        # 10,000 workspaces, each with a due task: all start in one cycle
        n = int(os.environ.get("BE_IT_WORKSPACES", "10000"))
        db.q("""SELECT broadcast.create_workspace('m' || i, 'M', 'UTC', '{"default_from_email": "m@example.com"}')
                FROM generate_series(1, %s) i""", n)
        db.q("""INSERT INTO broadcast.lists (workspace_id, list_id, name) SELECT 'm' || i, 'l', 'L' FROM generate_series(1, %s) i""", n)
        db.q("""INSERT INTO broadcast.contacts (workspace_id, email) SELECT 'm' || i, 'x@example.com' FROM generate_series(1, %s) i""", n)
        db.q("""INSERT INTO broadcast.list_members (workspace_id, list_id, email) SELECT 'm' || i, 'l', 'x@example.com' FROM generate_series(1, %s) i""", n)
        db.q("""INSERT INTO broadcast.templates (workspace_id, template_id, version, subject, html)
                SELECT 'm' || i, 't', 1, 'S', '<p/>' FROM generate_series(1, %s) i""", n)
        db.q("""INSERT INTO broadcast.integrations (workspace_id, integration_id, provider, config)
                SELECT 'm' || i, 'smtp', 'smtp', '{"host": "127.0.0.1"}' FROM generate_series(1, %s) i""", n)
        db.q("""SELECT broadcast.create_broadcast('m' || i, 'b', 'B', '{l}', 'smtp', 't') FROM generate_series(1, %s) i""", n)
        db.q("""SELECT broadcast.schedule_broadcast('m' || i, 'b') FROM generate_series(1, %s) i""", n)
        t0 = time.time()
        db.q("CALL broadcast.run_tasks(600)")
        took = time.time() - t0
        started = db.one("SELECT count(*) FROM broadcast.broadcasts WHERE workspace_id LIKE 'm%%' AND started_at IS NOT NULL")
        queued = db.one("SELECT count(*) FROM broadcast.email_queue WHERE workspace_id LIKE 'm%%'")
        r.check("%d workspaces with a due task: all started and expanded in one run (%d started, %d queued, %.1fs)"
                % (n, started, queued, took), started == n and queued == n, (started, queued))
        admin.close()
        db.close()
    except Exception:
        print("# server log:\n" + "\n".join("#   " + l for l in c.tail_log(60).splitlines()))
        raise
    finally:
        c.destroy()
