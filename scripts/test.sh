#!/usr/bin/env bash
# The test command: installs dependencies on a fresh Debian 12 machine,
# builds and installs the extension, runs every suite, and ends with
# "N passed, N failed".  Run as root (CI does); clusters run as postgres.
#
#   scripts/test.sh                  everything
#   BE_SUITES="regress unit" scripts/test.sh   a subset
#
# "package" builds the Debian package, installs it and runs make installcheck
# (the regress suites) against it; "regress" runs them against make install.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SUITES=${BE_SUITES:-"unit package mocks integration bench"}
LOGDIR=$(mktemp -d /tmp/be-test-logs.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

"$ROOT/scripts/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
if ! (make -s && make -s install) >"$LOGDIR/build.log" 2>&1; then
	cat "$LOGDIR/build.log"
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

total_p=0
total_f=0
for suite in $SUITES; do
	case "$suite" in
		unit) cmd=("$ROOT/scripts/run_unit.sh") ;;
		regress) cmd=("$ROOT/scripts/run_regress.sh") ;;
		package) cmd=("$ROOT/scripts/run_package.sh") ;;
		mocks) cmd=(python3 "$ROOT/test/mocks/test_mocks.py") ;;
		integration) cmd=(python3 "$ROOT/test/integration/run.py") ;;
		bench) cmd=("$ROOT/bench/run.sh" small) ;;
		*) echo "unknown suite $suite"; total_f=$((total_f + 1)); continue ;;
	esac
	echo "==== $suite"
	"${cmd[@]}" 2>&1 | tee "$LOGDIR/$suite.log"
	line=$(grep -E '^([a-z_-]+: )?[0-9]+ passed, [0-9]+ failed$' "$LOGDIR/$suite.log" | tail -1)
	if [ -z "$line" ]; then
		echo "$suite: no result line"
		total_f=$((total_f + 1))
		continue
	fi
	p=$(echo "$line" | sed -E 's/^([a-z_-]+: )?([0-9]+) passed.*/\2/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
	total_p=$((total_p + p))
	total_f=$((total_f + f))
done

echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
