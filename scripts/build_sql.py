#!/usr/bin/env python3
"""Builds the extension scripts of the version under work from sql/objects/.

    build_sql.py install                  the complete install script (stdout)
    build_sql.py upgrade FROM--TO         the upgrade script from the parts in
                                          sql/broadcast_engine--FROM--TO/ (stdout)
    build_sql.py check                    the layout rules below; exit 1 on a breach

Layout (one SQL object per file, as pg_partman has it):
    sql/objects/prologue.sql      roles and schema grants
    sql/objects/types/*.sql       composite types
    sql/objects/functions/*.sql   every function and procedure of one name, with
                                  its grants and comment: its only definition
    sql/objects/tables/*.sql      a table with its constraints, indexes,
                                  triggers, row security, grants, comments and
                                  pg_extension_config_dump
    sql/objects/views/*.sql       a view with its grants and comments
    sql/objects/epilogue.sql      rows the extension writes itself

The install script is prologue, types, functions, tables, the functions whose
signature names a table's row type, views, epilogue; tables follow their
foreign keys and views the views they read.  Function bodies are not checked
at creation (check_function_bodies is off for the script, as in pg_dump), so
functions need no order among themselves.

The upgrade of the version under work is its parts in file-name order, with
every function of sql/objects/functions/ (re)created after the parts whose
names sort before "10" (those that must run first: types a function's
signature needs, DROP FUNCTION of a changed signature).  The parts hold no
function definitions: each function's current body lives in exactly one file
(`check` enforces it).  Released scripts are frozen (scripts/check_release.sh).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OBJ = os.path.join(ROOT, "sql", "objects")
KINDS = ("types", "functions", "tables", "views")
DEF_RE = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\s+broadcast\.(\w+)\s*\(",
                    re.I | re.M)


def read(path):
    with open(path) as f:
        return f.read()


def objects(kind):
    d = os.path.join(OBJ, kind)
    return {f[:-4]: read(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith(".sql")}


def toposort(items, deps):
    """names in dependency order, ties by name; deps(name) -> names it needs"""
    done, out = set(), []

    def visit(n, path):
        if n in done:
            return
        if n in path:
            raise SystemExit("build_sql: dependency cycle through %s" % " -> ".join(path + [n]))
        for d in sorted(deps(n)):
            if d in items and d != n:
                visit(d, path + [n])
        done.add(n)
        out.append(n)

    for n in sorted(items):
        visit(n, [])
    return out


def header_of(text):
    """a function file's signatures and return types, without bodies"""
    return "\n".join(re.findall(r"CREATE\s+OR\s+REPLACE\s+(?:FUNCTION|PROCEDURE)[^$]*", text, re.I))


def section(title, body):
    return "\n/* ---- %s ---- */\n\n%s" % (title, body.strip() + "\n")


def install():
    types, fns, tables, views = (objects(k) for k in KINDS)
    late = {n for n, t in fns.items()
            if set(re.findall(r"broadcast\.(\w+)", header_of(t))) & set(tables)}
    out = ["/* broadcast_engine--%s.sql: the complete install script, built by scripts/build_sql.py"
           " from sql/objects/ (edit those files, not this one) */\n" % version(),
           '\\echo Use "CREATE EXTENSION broadcast_engine" to load this file. \\quit\n',
           "SET check_function_bodies = off;\n",
           section("prologue.sql", read(os.path.join(OBJ, "prologue.sql")))]
    out += [section("types/%s.sql" % n, types[n]) for n in sorted(types)]
    out += [section("functions/%s.sql" % n, fns[n]) for n in sorted(fns) if n not in late]
    tdeps = lambda n: set(re.findall(r"REFERENCES\s+broadcast\.(\w+)", tables[n]))
    out += [section("tables/%s.sql" % n, tables[n]) for n in toposort(tables, tdeps)]
    out += [section("functions/%s.sql" % n, fns[n]) for n in sorted(late)]
    vdeps = lambda n: set(re.findall(r"broadcast\.(\w+)", views[n])) & set(views)
    out += [section("views/%s.sql" % n, views[n]) for n in toposort(views, vdeps)]
    out.append(section("epilogue.sql", read(os.path.join(OBJ, "epilogue.sql"))))
    out.append("\nRESET check_function_bodies;\n")
    return "".join(out)


def upgrade(span):
    d = os.path.join(ROOT, "sql", "broadcast_engine--%s" % span)
    parts = sorted(f for f in os.listdir(d) if f.endswith(".sql"))
    fns = objects("functions")
    out = ["/* broadcast_engine--%s.sql: built by scripts/build_sql.py from the parts in"
           " sql/broadcast_engine--%s/ and every function of sql/objects/functions/ */\n" % (span, span),
           '\\echo Use "ALTER EXTENSION broadcast_engine UPDATE" to load this file. \\quit\n',
           "SET check_function_bodies = off;\n"]
    placed = False
    for p in parts:
        if not placed and p >= "10":
            out.append("\n/* ---- every function, as sql/objects/functions/ has it ---- */\n")
            out += [section("functions/%s.sql" % n, fns[n]) for n in sorted(fns)]
            placed = True
        out.append(section("%s/%s" % (os.path.basename(d), p), read(os.path.join(d, p))))
    if not placed:
        out += [section("functions/%s.sql" % n, fns[n]) for n in sorted(fns)]
    out.append("\nRESET check_function_bodies;\n")
    return "".join(out)


def version():
    m = re.search(r"^default_version\s*=\s*'([^']+)'", read(os.path.join(ROOT, "broadcast_engine.control")), re.M)
    return m.group(1)


def check():
    problems = []
    fns = objects("functions")
    for name, text in fns.items():
        names = {m.group(2) for m in DEF_RE.finditer(text)}
        if names != {name}:
            problems.append("functions/%s.sql defines %s" % (name, sorted(names) or "nothing"))
    for kind in ("types", "tables", "views"):
        for name, text in objects(kind).items():
            for m in DEF_RE.finditer(text):
                problems.append("%s/%s.sql defines function %s (it belongs in functions/)" % (kind, name, m.group(2)))
    sqldir = os.path.join(ROOT, "sql")
    ver = version()
    for d in sorted(os.listdir(sqldir)):
        full = os.path.join(sqldir, d)
        if os.path.isdir(full) and d.startswith("broadcast_engine--") and d.endswith("--" + ver):
            for p in sorted(os.listdir(full)):
                for m in DEF_RE.finditer(read(os.path.join(full, p))):
                    problems.append("%s/%s defines function %s: its body belongs in sql/objects/functions/"
                                    % (d, p, m.group(2)))
    for p in problems:
        print("build_sql: " + p, file=sys.stderr)
    return 1 if problems else 0


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "install":
        sys.stdout.write(install())
    elif len(sys.argv) == 3 and sys.argv[1] == "upgrade":
        sys.stdout.write(upgrade(sys.argv[2]))
    elif len(sys.argv) == 2 and sys.argv[1] == "check":
        sys.exit(check())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
