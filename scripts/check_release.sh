#!/usr/bin/env bash
# Release checks that need no server, run by scripts/run_package.sh (CI):
#  - META.json (PGXN, meta-spec 1.0.0) is valid and carries the control
#    file's default_version (the one place the version is stated);
#  - a released script is never edited again: every tracked
#    sql/broadcast_engine--*.sql (and part of a sql/broadcast_engine--A--B/
#    folder) whose target version is below default_version is listed in
#    sql/released.sha256 and still has the content it was released with;
#  - each function's body lives in exactly one file (scripts/build_sql.py).
# Last line: "release: N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
passed=0
failed=0
check() {	# check NAME CONDITION-EXIT-CODE
	if [ "$2" = 0 ]; then
		passed=$((passed + 1)); echo "ok - $1"
	else
		failed=$((failed + 1)); echo "not ok - $1"
	fi
}

ver=$(sed -n "s/^default_version = '\(.*\)'/\1/p" broadcast_engine.control)

# 1. META.json
python3 - "$ver" <<'PY'
import json, os, re, sys
ver = sys.argv[1]
semver = ".".join((ver.split(".") + ["0", "0"])[:3])  # 1.3 -> 1.3.0
problems = []
try:
    with open("META.json") as f:
        meta = json.load(f)
except (OSError, ValueError) as e:
    print("#   META.json: %s" % e)
    sys.exit(1)
for k in ("name", "abstract", "maintainer", "version", "license", "provides", "meta-spec",
          "prereqs", "resources", "tags"):
    if k not in meta:
        problems.append("missing key %r" % k)
get = lambda *path: (lambda d: [d := (d or {}).get(p) if isinstance(d, dict) else None for p in path][-1])(meta)
if meta.get("name") != "broadcast_engine":
    problems.append("name is %r" % meta.get("name"))
if get("meta-spec", "version") != "1.0.0":
    problems.append("meta-spec version is %r, not 1.0.0" % get("meta-spec", "version"))
if meta.get("version") != semver:
    problems.append("version %r differs from the control file's default_version %r (%s)"
                    % (meta.get("version"), ver, semver))
if not re.fullmatch(r"\d+\.\d+\.\d+", str(meta.get("version"))):
    problems.append("version %r is not a semantic version" % meta.get("version"))
if meta.get("license") != "postgresql":
    problems.append("license is %r" % meta.get("license"))
m = meta.get("maintainer")
if not (isinstance(m, list) and m and all(isinstance(x, str) and re.search(r"<[^@<>]+@[^@<>]+>$", x) for x in m)):
    problems.append("maintainer must be a list of 'name <address>'")
p = get("provides", "broadcast_engine") or {}
if p.get("version") != semver:
    problems.append("provides.broadcast_engine.version %r differs from %r" % (p.get("version"), semver))
for k in ("file", "docfile"):
    if not p.get(k) or not os.path.isfile(p[k]):
        problems.append("provides.broadcast_engine.%s %r is not a file of the tree" % (k, p.get(k)))
if get("prereqs", "runtime", "requires", "PostgreSQL") != "15.0.0":
    problems.append("prereqs.runtime.requires.PostgreSQL is %r" % get("prereqs", "runtime", "requires", "PostgreSQL"))
if "pg_cron" not in (get("prereqs", "runtime", "recommends") or {}):
    problems.append("prereqs.runtime.recommends lacks pg_cron")
if not isinstance(meta.get("resources"), dict) or not meta["resources"]:
    problems.append("resources must be a non-empty object")
t = meta.get("tags")
if not (isinstance(t, list) and t and all(isinstance(x, str) and 0 < len(x) <= 255 for x in t)):
    problems.append("tags must be a non-empty list of strings")
if meta.get("release_status", "stable") not in ("stable", "testing", "unstable"):
    problems.append("release_status is %r" % meta.get("release_status"))
for x in problems:
    print("#   META.json: " + x)
sys.exit(1 if problems else 0)
PY
check "META.json is valid PGXN meta (spec 1.0.0) for version $ver" $?

# 2. released scripts: the versions below default_version
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	scripts=$(git ls-files 'sql/broadcast_engine--*.sql')
else
	scripts=$(ls sql/broadcast_engine--*.sql)
fi
released=""
for f in $scripts; do
	target=${f##*--}
	target=${target%%/*}	# a part of sql/broadcast_engine--A--B/ belongs to B
	target=${target%.sql}
	if [ "$target" != "$ver" ] && [ "$(printf '%s\n%s\n' "$target" "$ver" | sort -V | head -1)" = "$target" ]; then
		released="$released$f"$'\n'
	fi
done
listed=$(awk '{print $2}' sql/released.sha256 | sed 's/^\*//' | sort)
[ -n "$released" ] && [ "$(printf '%s' "$released" | sort)" = "$listed" ]
rc=$?
[ $rc = 0 ] || { echo "#   released (below $ver):"; printf '#     %s\n' $released; echo "#   listed:"; printf '#     %s\n' $listed; }
check "sql/released.sha256 lists every released script (target version below $ver)" $rc
out=$(sha256sum --strict --check sql/released.sha256 2>&1)
rc=$?
[ $rc = 0 ] || printf '#   %s\n' "$out" | grep -v ': OK$'
check "released scripts have the content they were released with (sha256sum -c)" $rc

# 3. the check itself catches a one-byte edit
tmp=$(mktemp -d /tmp/be-release.XXXXXX)
mkdir -p "$tmp/sql"
for f in $listed; do cp "$f" "$tmp/$f"; done
first=$(printf '%s\n' $listed | head -1)
printf ' ' >> "$tmp/$first"
(cd "$tmp" && sha256sum --strict --check --quiet "$ROOT/sql/released.sha256" >/dev/null 2>&1)
rc=$?
rm -rf "$tmp"
[ $rc != 0 ]
check "an edit to a released script ($first) is caught" $?

# 4. one SQL object per file: each function's body in exactly one file of
#    sql/objects/functions/, none in the parts of the version under work
out=$(python3 scripts/build_sql.py check 2>&1)
rc=$?
[ $rc = 0 ] || printf '#   %s\n' "$out"
check "each function's body lives in exactly one file (scripts/build_sql.py check)" $rc

# 5. the checker itself catches a function body left in an upgrade part
tmp=$(mktemp -d /tmp/be-release.XXXXXX)
cp -r broadcast_engine.control scripts sql "$tmp/"
part=$(ls -d "$tmp"/sql/broadcast_engine--*--"$ver" 2>/dev/null | head -1)
if [ -n "$part" ]; then
	printf 'CREATE OR REPLACE FUNCTION broadcast.is_valid_id(id text) RETURNS boolean\nLANGUAGE sql AS $$ SELECT true $$;\n' \
		> "$part/99_stray.sql"
	python3 "$tmp/scripts/build_sql.py" check >/dev/null 2>&1
	rc=$?
else
	rc=1	# no parts folder: nothing to catch
fi
rm -rf "$tmp"
[ $rc != 0 ]
check "a function body left in an upgrade part is caught" $?

echo "release: $passed passed, $failed failed"
[ "$failed" = 0 ]
