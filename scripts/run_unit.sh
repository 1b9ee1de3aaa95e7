#!/usr/bin/env bash
# Unit tests of the server-independent C modules: a plain build, then the
# same tests under valgrind and under ASan+UBSan, then the independent MIME
# parser checks.  Last line: "unit: N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
UNIT="$ROOT/test/unit"
passed=0
failed=0

# run_bin LABEL CMD...: runs a test binary, adds its "N passed, N failed"
run_bin() {
	local label=$1
	shift
	local out
	out=$("$@" 2>&1)
	local rc=$?
	local line
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
	if [ -z "$line" ]; then
		printf '%s\n' "$out" | tail -20
		echo "not ok - $label: no result line (exit $rc)"
		failed=$((failed + 1))
		return
	fi
	local p f
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed}
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1		# a crash, a sanitizer report or a valgrind error after the tests
		printf '%s\n' "$out" | tail -30
	fi
	[ "$f" != 0 ] && printf '%s\n' "$out" | grep -A4 '^not ok' | head -40
	echo "$label: $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
}

if ! make -s -C "$UNIT" >/dev/null || ! make -s -C "$UNIT" SAN=1 >/dev/null; then
	make -C "$UNIT" 2>&1 | tail -30
	echo "unit: 0 passed, 1 failed"
	exit 1
fi

for bin in "$UNIT"/build/test_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	run_bin "$name" "$bin"
	run_bin "$name (valgrind)" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 "$bin"
	run_bin "$name (asan+ubsan)" env ASAN_OPTIONS=detect_leaks=1 "$UNIT/build-san/$name"
done

# Liquid conformance (golden-liquid), plain and under ASan+UBSan
run_bin "golden-liquid" python3 "$UNIT/liquid/run_golden.py" "$UNIT/build/liquid_cli"
run_bin "golden-liquid (asan+ubsan)" env ASAN_OPTIONS=detect_leaks=1 \
	python3 "$UNIT/liquid/run_golden.py" "$UNIT/build-san/liquid_cli"

for check in "$UNIT"/check_*.py; do
	[ -f "$check" ] || continue
	run_bin "$(basename "$check")" python3 "$check" "$UNIT/build"
done

echo "unit: $passed passed, $failed failed"
[ "$failed" = 0 ]
