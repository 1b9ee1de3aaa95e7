#!/usr/bin/python3
"""What each index and trigger of message_history costs the database path.

    bench/index_cost.py [small|full] [--port P] [--rows N] [--rounds K]

The database path of the ceiling client (bench/ceiling.c with URL "-":
claim 1,000 rows with FOR UPDATE SKIP LOCKED, insert their history rows,
delete them from the queue, commit; as many processes as the engine has
senders, BENCH_SENDERS, default 2) on the engine's tables as they ship,
then with 1.2's two indexes added back (1.3 serves stats and events
without them), with the contact index or the insert trigger taken away,
and on the minimal schema of bench/send.py (queue with an
identity key and one partial index, history with a primary key only).
Every variant runs once per round, rounds interleaved, in one cluster; the
figures are medians.  Between runs the history is truncated, so each run
inserts into an empty month.

Printed per variant: rows/s over the wall time and microseconds of one
process per row, and the difference to the tables as shipped.  This is
the measurement behind issue 13's "every index and trigger touched per
sent message" (docs/benchmarks.md).

full:  200,000 rows per run, 3 rounds; small: 20,000 rows, 1 round (a smoke
test: no speed checks).  Exit status 0 when every run recorded every row
once.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from send import MINIMAL_SCHEMA, SENDERS, SERVER_CONF, build_ceiling, run_ceiling  # noqa: E402
from send import Cluster, DB  # noqa: E402

# message_history's secondary index as shipped, by the suffix of its name (_history_partition_indexes)
INDEXES = ("contact_idx",)
# 1.2's two others, which 1.3 serves without (issue 13): to measure what they cost
OLD_INDEXES = {
    "broadcast_template_idx": "(workspace_id, broadcast_id, template_id) WHERE broadcast_id IS NOT NULL",
    "provider_id_idx": "(workspace_id, provider_message_id) WHERE provider_message_id IS NOT NULL",
}
TRIGGERS = ("message_history_apply_pending",)


def partitions(db):
    return [r[0] for r in db.q("""SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                                   WHERE i.inhparent = 'broadcast.message_history'::regclass
                                   ORDER BY 1""")]


def index_defs(db, suffixes):
    """The CREATE INDEX statements of the partitions' indexes with these name suffixes."""
    out = []
    for part in partitions(db):
        for s in suffixes:
            d = db.one("SELECT pg_get_indexdef(%s::regclass)", "broadcast." + part + "_" + s)
            if d is None:
                raise RuntimeError("no index %s_%s" % (part, s))
            out.append(("broadcast." + part + "_" + s, d))
    return out


class Variant:
    """Takes some of the history's indexes or its trigger away, or adds 1.2's, for one run."""

    def __init__(self, label, drop=(), add=(), triggers=False):
        self.label, self.drop, self.add, self.triggers = label, drop, add, triggers
        self.saved = []

    def apply(self, db):
        self.saved = index_defs(db, self.drop)
        for name, _ in self.saved:
            db.q("DROP INDEX " + name)
        for part in partitions(db):
            for suffix in self.add:
                db.q("CREATE INDEX %s_%s ON broadcast.%s %s" % (part, suffix, part, OLD_INDEXES[suffix]))
        for t in TRIGGERS if self.triggers else ():
            db.q("ALTER TABLE broadcast.message_history DISABLE TRIGGER " + t)

    def undo(self, db):
        for _, d in self.saved:
            db.q(d)
        for part in partitions(db):
            for suffix in self.add:
                db.q("DROP INDEX broadcast.%s_%s" % (part, suffix))
        for t in TRIGGERS if self.triggers else ():
            db.q("ALTER TABLE broadcast.message_history ENABLE TRIGGER " + t)


def variants():
    out = [Variant("engine tables as shipped")]
    out += [Variant("with 1.2's %s" % i, add=(i,)) for i in OLD_INDEXES]
    out.append(Variant("with both of 1.2's (its four indexes)", add=tuple(OLD_INDEXES)))
    out += [Variant("without %s" % i, drop=(i,)) for i in INDEXES]
    out.append(Variant("without the insert trigger", triggers=True))
    out.append(None)  # the minimal schema
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="full", choices=["small", "full"])
    ap.add_argument("--port", type=int, default=55994)
    ap.add_argument("--rows", type=int)
    ap.add_argument("--rounds", type=int)
    a = ap.parse_args()
    rows, rounds = (20000, 1) if a.mode == "small" else (200000, 3)
    if a.rows is not None:
        if not 1000 <= a.rows <= 5000000:
            ap.error("--rows must be between 1,000 and 5,000,000")
        rows = a.rows
    if a.rounds is not None:
        if not 1 <= a.rounds <= 9:
            ap.error("--rounds must be between 1 and 9")
        rounds = a.rounds

    exe = build_ceiling()
    c = Cluster(a.port, conf={"broadcast_engine.sender_workers": "0", **SERVER_CONF})
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        db.q("SELECT broadcast.create_workspace('ceil', 'Ceiling')")
        db.q(MINIMAL_SCHEMA)
        # the months around now exist, as after maintain_history()
        db.q("SELECT broadcast.maintain_history(1)")
        vs = variants()
        rates = {i: [] for i in range(len(vs))}
        k = 0
        for rnd in range(1, rounds + 1):
            for i, v in enumerate(vs):
                k += 1
                db.q("TRUNCATE broadcast.message_history, ceil.history")
                db.q("CHECKPOINT")
                if v is not None:
                    v.apply(db)
                try:
                    rate, _ = run_ceiling(c, db, rows, "-", exe, "minimal" if v is None else "engine",
                                          "x%d" % k, 0)
                finally:
                    if v is not None:
                        v.undo(db)
                rates[i].append(rate)
                print("index_cost round %d: %s: %d rows at %.0f rows/s"
                      % (rnd, "minimal schema" if v is None else v.label, rows, rate))
        med = {i: sorted(r)[len(r) // 2] for i, r in rates.items()}
        us = {i: SENDERS * 1e6 / med[i] for i in med}
        base = us[0]
        for i, v in enumerate(vs):
            label = "minimal schema" if v is None else v.label
            print("index_cost: %s: %.0f rows/s, %.1f us of a process per row%s"
                  % (label, med[i], us[i], "" if i == 0 else " (%+.1f us against the engine's tables)"
                     % (us[i] - base)))
        print("index_cost: the engine's tables cost %.2fx the minimal schema per row (%d processes, medians of %d)"
              % (base / us[len(vs) - 1], SENDERS, rounds))
    finally:
        c.destroy()
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print("index_cost: took %.0f s" % (time.time() - t0))
    sys.exit(rc)
