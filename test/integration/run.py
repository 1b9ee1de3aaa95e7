#!/usr/bin/env python3
"""Runs broadcast_engine's integration suites (test_*.py in this folder).

Each suite module has run(runner) and starts the clusters and servers it
needs.  Pass suite names to run a subset:  run.py scheduler sender
Last line: "integration: N passed, N failed".
"""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import belib  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    names = sorted(f[5:-3] for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py"))
    if len(sys.argv) > 1:
        names = [n for n in names if n in sys.argv[1:]]
    runner = belib.Runner()
    for name in names:
        print("# suite %s" % name)
        sys.stdout.flush()
        mod = importlib.import_module("test_" + name)
        try:
            mod.run(runner)
        except Exception as e:  # a suite that cannot even set up counts as a failure
            runner.check("suite %s set up" % name, False, repr(e))
    return runner.done("integration")


if __name__ == "__main__":
    sys.exit(main())
