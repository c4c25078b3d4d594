#!/usr/bin/python3
"""`make bench`: discover tests/bench/rows/*.py, set up each row's resources, measure, print one table.

Each row module defines ``comparisons()``, a context manager yielding a list of Comparison objects (it sets
up the resource before and tears it down after), and of Note objects (a measured line printed below the table). A row whose set-up fails is reported, not hidden.
Options: --runs N (default 15), --only NAME (substring of the row module name).
"""

import argparse
import importlib
import os
import pkgutil
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the package lab (the rigs)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "lib"))

from bench import core  # noqa: E402
from bench import rows as rows_pkg  # noqa: E402

ORDER = ["library"]


def row_modules(only=None):
    names = [m.name for m in pkgutil.iter_modules(rows_pkg.__path__)]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return [n for n in names if not only or only in n]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only")
    args = parser.parse_args()
    results, failures, notes = [], [], []
    for name in row_modules(args.only):
        module = importlib.import_module("bench.rows." + name)
        try:
            with module.comparisons() as comparisons:
                for comparison in comparisons:
                    print("measuring: %s" % comparison.title, file=sys.stderr, flush=True)
                    if isinstance(comparison, core.Note):
                        notes.append("%s: %s" % (comparison.title, comparison.measure()))
                    else:
                        results.append(core.measure(comparison, runs=args.runs))
        except Exception as err:  # a row's rig failed: say so in the table, keep the other rows
            traceback.print_exc()
            failures.append("%s: set-up failed: %s" % (name, err))
    print()
    print(core.format_table(results))
    for note in notes:
        print(note)
    for failure in failures:
        print("ROW FAILED: " + failure)
    return 1 if failures or any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
