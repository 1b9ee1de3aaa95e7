#!/usr/bin/env bash
# Runs the pg_regress suites against a temporary instance preloaded with
# broadcast_engine and pg_cron.  Must run as root (it switches to postgres)
# or as a non-root user that can write to a temporary directory.
# Prints each suite's result and a final "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=$(pg_config --bindir)
PGXS_DIR=$(dirname "$(pg_config --pgxs)")
REGRESS="$PGXS_DIR/../test/regress/pg_regress"

WORK=$(mktemp -d /tmp/be-regress.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -r "$ROOT/sql" "$ROOT/expected" "$ROOT/test" "$WORK/"
mkdir -p "$WORK/out"

# test/regress_schedule gives the order; arguments pick a subset
if [ $# -gt 0 ]; then
	TESTS=("$@")
else
	mapfile -t TESTS < <(grep -v '^#' "$ROOT/test/regress_schedule" | grep -v '^$')
fi

RUN=()
if [ "$(id -u)" = 0 ]; then
	chown -R postgres "$WORK"
	RUN=(runuser -u postgres --)
fi
PORT=${BE_REGRESS_PORT:-58432}
(cd "$WORK" && "${RUN[@]}" "$REGRESS" --inputdir="$WORK" --outputdir="$WORK/out" \
	--bindir="$PGBIN" --temp-instance="$WORK/tmp_check" --temp-config="$WORK/test/regress.conf" \
	--port="$PORT" --dbname=contrib_regression "${TESTS[@]}") > "$WORK/pg_regress.log" 2>&1
rc=$?
cat "$WORK/pg_regress.log"
# keep the actual outputs for inspection (results/ is git-ignored)
mkdir -p "$ROOT/results" && cp "$WORK"/out/results/*.out "$ROOT/results/" 2>/dev/null || true
if [ -f "$WORK/out/regression.diffs" ]; then
	echo "---- regression.diffs ----"
	cat "$WORK/out/regression.diffs"
	cp "$WORK/out/regression.diffs" "$ROOT/regression.diffs" 2>/dev/null || true
fi
passed=$(grep -cE '^(test | +)?[a-z0-9_]+ +\.\.\. ok|^ok [0-9]+ ' "$WORK/pg_regress.log")
failed=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' "$WORK/pg_regress.log")
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
	failed=1	# the instance did not start, or pg_regress failed before any test
fi
echo "regress: $passed passed, $failed failed"
[ "$failed" = 0 ]
