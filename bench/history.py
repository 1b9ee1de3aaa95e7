#!/usr/bin/python3
"""Message history retention: dropping a month's partition vs deleting its rows.

    bench/history.py [small|full] [--port P]

full:  20,000,000 history rows over 10 months (2,000,000 a month);
small: 200,000 over 10 months (20,000 a month; a smoke test: no speed
assertions).

One throw-away cluster (as in bench/expand.py).  message_history is
partitioned by month of its UUIDv7 message_id (1.3); the rows are
generated through the root with UUIDv7 ids of their month, after the
months' partitions were made (untimed), then a CHECKPOINT.  Measured, in
the same session:
  baseline  DELETE of the oldest month's rows (what 1.2's retention had to
            do: one row at a time, index entries and dead tuples left for
            VACUUM, which is not counted here)
  drop      DROP TABLE of the next month's partition (same number of rows),
            as maintain_history() does it
  maintain  one broadcast.maintain_history() call with the retention set to
            drop the (now empty) oldest month too
Checked afterwards: exactly the two months' rows are gone and the other
months' rows are all there.

Exit status 0 when the run completed and checked out, 1 otherwise.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expand import Cluster, Session, free_port, log  # noqa: E402

DB = "bench"
MONTHS = 10

# rows of months already sent: UUIDv7 ids of their time, spread evenly over each month;
# parameters: workspace, broadcast id prefix, first i, last i, the month's start, first i, step
ROWS_SQL = """
INSERT INTO broadcast.message_history
       (workspace_id, message_id, broadcast_id, template_id, list_id, email, integration_id, provider,
        provider_message_id, status, sent_at, created_at)
SELECT %s,
       (lpad(to_hex((extract(epoch FROM x.t) * 1000)::bigint), 12, '0') || '7' || substr(md5(i::text), 1, 3)
        || '8' || substr(md5(i::text), 4, 15))::uuid,
       %s || (i / 100000), 't', 'l', 'c' || i || '@example.com', 'i', 'smtp', 'p' || i, 'sent', x.t, x.t
  FROM generate_series(%s, %s) i,
       LATERAL (SELECT %s::timestamptz + (i - %s) * %s::interval AS t) x
"""


def make_history(s, workspace, bid_prefix, per_month, months=MONTHS):
    """per_month history rows in each of the last months (this one included), in their
    partitions, made in bulk through the root; returns the months' first days.  s: any
    session with q() and one()."""
    first = s.one("SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '%s months')::date"
                  % (months - 1))
    days = [s.one("SELECT (%s::date + interval '1 month' * %s)::date", first, k) for k in range(months)]
    for m in days:
        s.q("SELECT broadcast._history_add_partition(%s)", m)
    for k, m in enumerate(days):
        lo = k * per_month + 1
        step = s.one("SELECT ((%s::date + interval '1 month') - %s::date) / %s", m, m, per_month + 1)
        s.q(ROWS_SQL, workspace, bid_prefix, lo, lo + per_month - 1, "%s 00:00:01+00" % m, lo, step)
    s.q("VACUUM ANALYZE broadcast.message_history")
    s.q("CHECKPOINT")
    return days


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55995)
    args = ap.parse_args()
    per_month = 2000000 if args.mode == "full" else 20000

    cluster = Cluster(free_port(args.port))
    ok = True
    try:
        cluster.start()
        admin = Session(cluster.connect("postgres"))
        admin.q("CREATE DATABASE " + DB)
        s = Session(cluster.connect(DB))
        s.q("CREATE EXTENSION broadcast_engine")
        s.q("SELECT broadcast.create_workspace('bench', 'Bench')")
        t = time.perf_counter()
        months = make_history(s, "bench", "b", per_month)
        total = s.one("SELECT count(*) FROM broadcast.message_history")
        size = s.one("SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits"
                     " WHERE inhparent = 'broadcast.message_history'::regclass")
        log("setup: %d rows in %d monthly partitions (%s with indexes) in %.1fs"
            % (total, MONTHS, size, time.perf_counter() - t))

        oldest, second = months[0], months[1]
        name = "message_history_p" + second.strftime("%Y%m")
        n_old = s.one("SELECT count(*) FROM broadcast.message_history"
                      " WHERE message_id >= broadcast._uuid7_floor(%s::date::timestamp AT TIME ZONE 'UTC')"
                      "   AND message_id < broadcast._uuid7_floor(%s::date::timestamp AT TIME ZONE 'UTC')",
                      oldest, second)
        n_second = s.one("SELECT count(*) FROM broadcast.%s" % name)

        t = time.perf_counter()
        s.q("DELETE FROM broadcast.message_history"
            " WHERE message_id >= broadcast._uuid7_floor(%s::date::timestamp AT TIME ZONE 'UTC')"
            "   AND message_id < broadcast._uuid7_floor(%s::date::timestamp AT TIME ZONE 'UTC')", oldest, second)
        t_delete = time.perf_counter() - t

        t = time.perf_counter()
        s.q("DROP TABLE broadcast.%s" % name)
        t_drop = time.perf_counter() - t

        # the retention that makes the oldest month (now empty) due as well
        keep = s.one("SELECT ((extract(year FROM now()) * 12 + extract(month FROM now()))"
                     " - (extract(year FROM %s::date) * 12 + extract(month FROM %s::date)))::int - 1",
                     oldest, oldest)
        s.q("SET broadcast_engine.history_retention = %s" % int(keep))
        t = time.perf_counter()
        res = s.q("SELECT created, dropped, deleted FROM broadcast.maintain_history()")[0]
        t_maint = time.perf_counter() - t

        log("baseline: DELETE of one month's %d rows: %.3f s (%.0f rows/s; dead tuples left for VACUUM)"
            % (n_old, t_delete, n_old / t_delete if t_delete else 0))
        log("drop: DROP TABLE of one month's partition, %d rows: %.4f s (%.0fx faster than the DELETE)"
            % (n_second, t_drop, t_delete / t_drop if t_drop else 0))
        log("maintain: maintain_history() (created %d, dropped %d, deleted %d): %.4f s"
            % (res[0], res[1], res[2], t_maint))

        left = s.one("SELECT count(*) FROM broadcast.message_history")
        parts = s.one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'broadcast.message_history'::regclass"
                      " AND inhrelid <> 'broadcast.message_history_default'::regclass")
        if left != total - n_old - n_second or n_old != per_month or n_second != per_month:
            log("FAILED: %d rows left of %d (deleted %d, dropped %d)" % (left, total, n_old, n_second))
            ok = False
        if res[1] != 1 or res[2] != 0:
            log("FAILED: maintain_history dropped %d partitions and deleted %d rows (expected 1 and 0)"
                % (res[1], res[2]))
            ok = False
        log("after: %d rows in %d monthly partitions" % (left, parts))
    except Exception as exc:  # noqa: BLE001
        log("error: %s\n%s" % (exc, cluster.tail_log()))
        ok = False
    finally:
        cluster.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
