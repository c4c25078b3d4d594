"""Bench row: the cost of the library itself, `meta-data` against a bare interpreter (goal ≤ 1.5×)."""

import contextlib
import os

from bench.core import Command, Comparison

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
       "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1"}


@contextlib.contextmanager
def comparisons():
    baseline = Command(["/usr/bin/python3", "-c", "pass"], ENV)
    agents = os.path.join(REPO, "agents")
    found = []
    for name in sorted(os.listdir(agents)):
        path = os.path.join(agents, name)
        if os.access(path, os.X_OK):
            found.append(Comparison("%s meta-data vs python3 -c pass" % name, Command([path, "meta-data"], ENV),
                                    baseline, goal=1.5, label_b="python3"))
    yield found
