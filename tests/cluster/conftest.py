"""Fixtures of the cluster scenarios: one 3-node namespace cluster for the whole session.

`lab` installs pyra on the host with `make install` (as an admin would; the nodes see the host's /usr), brings
the rig up once, and tears it down after the last cluster test, leaving nothing behind (test_teardown.py, ordered
last, tears it down itself and checks exactly that). `cluster` (per test)
makes sure every node is back online and no test constraint is left before the test starts. Measured times
(scenario 7) are collected in TIMES, printed at the end of the run (each record, then per agent: start,
migrate/move, failover) and written to lab.clusterops.TIMINGS (/var/tmp/pyra-pcmk-timings.json).
"""
import os
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lab import REPO, pyralab  # noqa: E402
from lab.clusterops import TIMES, record, write_timings  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail("the cluster rig needs root (namespaces, mounts, daemons)")
    if os.environ.get("PYRA_INSTALL") == "package":  # the Debian package (`make deb`) instead of `make install`
        from pyra import __version__
        deb = f"{REPO}/build/deb/pyra_{__version__}_all.deb"
        steps = [["make", "-s", "-C", REPO, "deb"], ["make", "-s", "-C", REPO, "uninstall"],
                 ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--reinstall", deb]]
    else:
        steps = [["make", "-s", "-C", REPO, "install", "PY=/usr/bin/python3"]]
    for step in steps:
        res = subprocess.run(step, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if res.returncode != 0:
            pytest.fail(f"{' '.join(step)} failed: {(res.stdout + res.stderr)[-2000:]}")
    rig = pyralab.Lab()
    try:
        rig.up(3)
    except pyralab.LabError as e:
        logs = "".join(rig.pacemaker_log(n)[-3000:] for n in rig.nodes)
        rig.down()
        pytest.fail(f"cluster did not come up: {e}\n{logs}")
    with open(f"{pyralab.LAB}/last-up-seconds", encoding="ascii") as f:
        record("cluster up (3 nodes, fencing on)", float(f.read()))
    yield rig
    rig.down()


@pytest.fixture
def cluster(lab, request):
    """The session cluster, healed: all nodes online, shared storage plugged, no leftover constraints."""
    lab.heal()
    for n in lab.nodes:
        if not lab.alive(n):
            lab.start_node(n)
        else:
            lab.signal_node(n, signal.SIGCONT)  # in case a test froze it
    for n in lab.nodes:
        lab.plug(n)
    pyralab.wait_for(lambda: lab.online(lab.viewer()) == lab.nodes, 120, 0.3, what="all nodes online")
    yield lab
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write(lab.mon())
        for n in lab.nodes:
            lines = [ln for ln in lab.pacemaker_log(n).splitlines()
                     if "notice:" in ln or "warning:" in ln or "error:" in ln or "crit:" in ln]
            sys.stderr.write(f"----- {n} pacemaker.log (notices and worse, tail)\n" + "\n".join(lines[-40:]) + "\n")


def pytest_collection_modifyitems(config, items):
    """test_teardown.py tears the session's lab down: it runs after every other test."""
    items.sort(key=lambda item: item.path.name == "test_teardown.py")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_terminal_summary(terminalreporter):
    if not TIMES:
        return
    terminalreporter.section("pyra cluster timings (scenario 7)")
    for what, seconds, _, _ in TIMES:
        terminalreporter.write_line(f"{seconds:7.2f} s  {what}")
    table = {}
    for _, seconds, agent, kind in TIMES:
        if agent and kind:
            table.setdefault(agent, {})[kind] = seconds
    terminalreporter.write_line("per agent:")
    for agent in sorted(table):
        terminalreporter.write_line(f"  {agent}: " + ", ".join(f"{k} {v:.1f} s" for k, v in table[agent].items()))
    terminalreporter.write_line(f"(also written to {write_timings()})")
