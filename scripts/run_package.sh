#!/usr/bin/env bash
# Checks the release files (scripts/check_release.sh: META.json, released
# scripts unchanged), builds the Debian package postgresql-15-broadcast-engine
# from the committed tree (debian/, pg_buildext), installs it on this
# machine, and runs `make installcheck` (scripts/run_regress.sh) against the
# installed package.  Run as root (CI does).  Last line: "package: N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/be-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
check() {	# check NAME CONDITION-EXIT-CODE
	if [ "$2" = 0 ]; then
		passed=$((passed + 1)); echo "ok - $1"
	else
		failed=$((failed + 1)); echo "not ok - $1"
	fi
}

# release checks on the committed tree: META.json, released scripts unchanged
"$ROOT/scripts/check_release.sh" > "$WORK/release.log" 2>&1
cat "$WORK/release.log"
line=$(grep -E '^release: [0-9]+ passed, [0-9]+ failed$' "$WORK/release.log" | tail -1)
if [ -n "$line" ]; then
	passed=$((passed + $(echo "$line" | sed -E 's/^release: ([0-9]+) passed.*/\1/')))
	failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
else
	failed=$((failed + 1))
fi

# the tracked files only, as a clean clone has them
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z | xargs -0 tar -cf -) | tar -xf - -C "$WORK/src"
(cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b > "$WORK/build.log" 2>&1)
rc=$?
[ $rc = 0 ] || tail -40 "$WORK/build.log"
check "dpkg-buildpackage builds postgresql-15-broadcast-engine" $rc
deb=$(ls "$WORK"/postgresql-15-broadcast-engine_*.deb 2>/dev/null | head -1)
if [ -n "$deb" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades "$deb" > "$WORK/install.log" 2>&1
	rc=$?
	[ $rc = 0 ] || tail -20 "$WORK/install.log"
	check "the package installs" $rc
	owner=$(dpkg -S "$(pg_config --pkglibdir)/broadcast_engine.so" 2>/dev/null | cut -d: -f1)
	[ "$owner" = postgresql-15-broadcast-engine ]
	check "the installed library belongs to the package ($owner)" $?
	ver=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$(pg_config --sharedir)/extension/broadcast_engine.control")
	upgrade=$(dpkg -L postgresql-15-broadcast-engine | grep -c "broadcast_engine--.*--$ver.sql")
	[ "$upgrade" -ge 1 ]
	check "the package ships the upgrade script to $ver (built from its parts)" $?
	dpkg -L postgresql-15-broadcast-engine | grep -q "/broadcast_engine--$ver.sql$"
	check "the package ships the complete install script of $ver (built from sql/objects)" $?
fi
# make installcheck against what the package installed
"$ROOT/scripts/run_regress.sh" > "$WORK/regress.log" 2>&1
cat "$WORK/regress.log"
line=$(grep -E '^regress: [0-9]+ passed, [0-9]+ failed$' "$WORK/regress.log" | tail -1)
if [ -n "$line" ]; then
	passed=$((passed + $(echo "$line" | sed -E 's/^regress: ([0-9]+) passed.*/\1/')))
	failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
else
	failed=$((failed + 1))
fi
echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
