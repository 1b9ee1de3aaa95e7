#!/usr/bin/env bash
# Runs the pg_regress suites (`make installcheck`) against a temporary instance
# preloaded with broadcast_engine and pg_cron.  Must run as root (it switches to postgres)
# or as a non-root user that can write to a temporary directory.
# Prints each suite's result and a final "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

WORK=$(mktemp -d /tmp/be-regress.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# `make installcheck` in a copy of the tree that the postgres user owns
# (initdb refuses to run as root)
cp -r "$ROOT/Makefile" "$ROOT/broadcast_engine.control" "$ROOT/sql" "$ROOT/expected" "$ROOT/test" "$WORK/"

# test/regress_schedule gives the order (the Makefile's REGRESS); arguments pick a subset
SUBSET=()
if [ $# -gt 0 ]; then
	SUBSET=("REGRESS=$*")
fi

RUN=()
if [ "$(id -u)" = 0 ]; then
	chown -R postgres "$WORK"
	RUN=(runuser -u postgres --)
fi
PORT=${BE_REGRESS_PORT:-58432}
"${RUN[@]}" make -C "$WORK" -s installcheck PG_CONFIG="$(command -v pg_config)" \
	EXTRA_REGRESS_OPTS="--port=$PORT" "${SUBSET[@]}" > "$WORK/pg_regress.log" 2>&1
rc=$?
cat "$WORK/pg_regress.log"
# keep the actual outputs for inspection (results/ is git-ignored)
mkdir -p "$ROOT/results" && cp "$WORK"/results/*.out "$ROOT/results/" 2>/dev/null || true
if [ -f "$WORK/regression.diffs" ]; then
	echo "---- regression.diffs ----"
	cat "$WORK/regression.diffs"
	cp "$WORK/regression.diffs" "$ROOT/regression.diffs" 2>/dev/null || true
fi
passed=$(grep -cE '^(test | +)?[a-z0-9_]+ +\.\.\. ok|^ok [0-9]+ ' "$WORK/pg_regress.log")
failed=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' "$WORK/pg_regress.log")
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
	failed=1	# the instance did not start, or pg_regress failed before any test
fi
echo "regress: $passed passed, $failed failed"
[ "$failed" = 0 ]
