#!/bin/sh
# Every benchmark, each figure printed beside its same-run baseline.
#
#   bench/run.sh [full]     the real sizes (the figures in docs/benchmarks.md)
#   bench/run.sh small      a quick pass (CI): small sizes, one run, no speed checks
#
# Runs as root (like CI) or as a user who can run initdb; the database
# clusters run as the postgres OS user on a free loopback port (from 55999,
# BENCH_PORT to change) in temporary folders removed afterwards.  Uses the
# installed broadcast_engine; installs it (make install) only when it is
# missing.  Run one at a time: the figures are CPU-bound.
#
# The last line is "bench: N passed, M failed"; a benchmark that crashes or
# errors counts as failed and the exit status is 1.
set -u
MODE=${1:-full}
case "$MODE" in
small) N=20000 ;;
full) N= ;;
*)
	echo "usage: bench/run.sh [small|full]" >&2
	exit 2
	;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PORT=${BENCH_PORT:-55999}

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
if ! $PY -c 'import psycopg2' 2>/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get install -y -q python3-psycopg2 >/dev/null || true
	fi
fi
if [ ! -f "$(pg_config --pkglibdir)/broadcast_engine.so" ]; then
	echo "# broadcast_engine is not installed: make install"
	make -C "$ROOT" -s install >/dev/null || echo "# make install failed" >&2
elif [ -n "$(find "$ROOT/src" "$ROOT/sql" -newer "$(pg_config --pkglibdir)/broadcast_engine.so" \
		\( -name '*.c' -o -name '*.h' -o -name '*.sql' \) 2>/dev/null | head -1)" ]; then
	echo "# note: sources are newer than the installed broadcast_engine (make install to refresh)"
fi

passed=0
failed=0
T0=$(date +%s)

# run NAME COMMAND...: one benchmark; its own lines carry its figures and baselines
run() {
	name=$1
	shift
	start=$(date +%s)
	echo "== $name"
	"$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "== $name: ok ($(($(date +%s) - start))s)"
	else
		failed=$((failed + 1))
		echo "== $name: FAILED (exit status $rc)"
	fi
}

echo "bench: $MODE mode on $(nproc) cores, $(uname -n), load average $(cut -d' ' -f1-3 /proc/loadavg)"
run render sh "$HERE/render.sh" $N
run mime sh "$HERE/mime.sh" $N
run expand $PY "$HERE/expand.py" "$MODE" --port "$PORT"
run expand_segment $PY "$HERE/expand.py" "$MODE" --segment --port "$PORT"
run send $PY "$HERE/send.py" "$MODE" --port "$((PORT - 1))"
run providers $PY "$HERE/providers.py" "$MODE" --port "$((PORT - 2))"
run events $PY "$HERE/events.py" "$MODE" --port "$((PORT - 3))"
run history $PY "$HERE/history.py" "$MODE" --port "$((PORT - 4))"
run index_cost $PY "$HERE/index_cost.py" "$MODE" --port "$((PORT - 5))"

echo "bench: $MODE mode took $(($(date +%s) - T0))s"
echo "bench: $passed passed, $failed failed"
[ $failed -eq 0 ]
