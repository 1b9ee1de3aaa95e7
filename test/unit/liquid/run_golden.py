#!/usr/bin/env python3
"""Runs the golden-liquid conformance cases (golden_liquid.json, MIT, see
LICENSE.golden-liquid) against the engine through liquid_cli.

    run_golden.py CLI [--report] [--write-skips]

Each case renders its template with its data, and the snippets its
"templates" map names for {% render %} / {% include %}: the output must
equal "result" (or one of "results"), and a case marked "invalid" must
fail to compile or render.  liquid_cli also renders every template
specialised (tmpl_specialize) and fails the case when that differs.  Cases listed in skips.txt ("name<TAB>reason") are not
counted as failures; a listed case that passes is reported so the list can
shrink.  Last line: "N passed, N failed" (failed = non-skipped failures),
the format scripts/run_unit.sh reads.  --write-skips rewrites skips.txt
with the current failures (keeping the reasons already given)."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_skips(path):
    skips = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                name, _, reason = line.partition("\t")
                skips[name] = reason
    return skips


ARRAY_FILTERS = ("split", "map", "where", "sort", "sort_natural", "uniq", "compact",
                 "concat", "reverse", "sum", "find", "find_index", "has", "reject")
STATE_TAGS = ("tablerow", "cycle", "increment", "decrement", "ifchanged", "doc")  # reason hints


def default_reason(case):
    """A first reason for a failing case; edit skips.txt to refine it."""
    import re
    tags = case.get("tags", [])
    src = case["template"]
    if "templates" in case:
        return "differs from Liquid with snippets, not fixed yet"
    if "lax" in tags or "lax" in case["name"]:
        return "lax mode: the engine is strict only"
    if "offset: continue" in src or "offset:continue" in src:
        return "offset: continue is refused at compile time (not implemented)"
    used = set(re.findall(r"\|\s*(\w+)", src))
    arr = sorted(used.intersection(ARRAY_FILTERS))
    if arr:
        return "array-building filters not implemented yet: " + ", ".join(arr)
    for t in STATE_TAGS:
        if re.search(r"{%-?\s*" + t + r"\b", src) or re.search(r"(^|\n)\s*" + t + r"\b", src):
            return "differs from Liquid, not fixed yet (%s tag)" % t
    words = [t for t in tags if t.endswith(" tag") or t.endswith(" filter")]
    return "differs from Liquid, not fixed yet (%s)" % (", ".join(words) or "other")


def main():
    cli = sys.argv[1]
    report = "--report" in sys.argv
    write = "--write-skips" in sys.argv
    with open(os.path.join(HERE, "golden_liquid.json"), encoding="utf-8") as f:
        cases = json.load(f)["tests"]
    skip_path = os.path.join(HERE, "skips.txt")
    skips = load_skips(skip_path)

    stream = bytearray()
    for case in cases:
        src = case["template"].encode()
        data = json.dumps(case.get("data", {})).encode()
        snippets = json.dumps(case.get("templates", {})).encode()
        stream += b"%d\n%s%d\n%s%d\n%s" % (len(src), src, len(data), data,
                                           len(snippets), snippets)
    proc = subprocess.run([cli], input=bytes(stream), capture_output=True, timeout=120)
    if proc.returncode != 0:
        print("liquid_cli exited with %d: %s" % (proc.returncode, proc.stderr.decode(errors="replace")))
        print("0 passed, 1 failed")
        return 1
    out = proc.stdout
    pos = 0
    passed = failed = skipped = fixed = 0
    new_skips = {}
    for case in cases:
        nl = out.index(b"\n", pos)
        status, length = out[pos:nl].split(b" ")
        body = out[nl + 1:nl + 1 + int(length)].decode(errors="replace")
        pos = nl + 1 + int(length)
        if case.get("invalid"):
            ok = status == b"ERR"
        else:
            want = case.get("results", [case.get("result")])
            ok = status == b"OK" and body in want
        name = case["name"]
        if ok:
            passed += 1
            if name in skips:
                fixed += 1
                if report:
                    print("skipped case passes now: %s" % name)
            continue
        new_skips[name] = skips.get(name) or default_reason(case)
        if name in skips:
            skipped += 1
            continue
        failed += 1
        print("not ok - %s" % name)
        print("#   template: %r" % case["template"])
        print("#   want: %r" % (case.get("results") or case.get("result") or "an error"))
        print("#   got:  %s %r" % (status.decode(), body))
    if write:
        with open(skip_path, "w", encoding="utf-8") as f:
            f.write("# golden-liquid cases the engine does not pass, with the reason.\n"
                    "# name<TAB>reason; run_golden.py fails on any other failing case.\n")
            for name in sorted(new_skips):
                f.write("%s\t%s\n" % (name, new_skips[name]))
    print("golden-liquid: %d cases, %d pass, %d skipped (listed in skips.txt), %d listed but passing"
          % (len(cases), passed, skipped, fixed))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
