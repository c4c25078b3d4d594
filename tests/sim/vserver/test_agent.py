"""ocf:pyra:VServer end to end, run like Pacemaker runs it, against the util-vserver contract simulator.

Each guest is a real process tree in its own namespaces (tests/fakes/vserver), so start, stop, crash, a guest
that ignores stop and a config dir on a filesystem that goes away are real, not mocked.
"""
import os
import subprocess
import time

import pytest

from harness import ocf_tester, run_agent
from lab.rigs import vserver_rig as vr

pytestmark = pytest.mark.root

AGENT = "VServer"


def params(rig, guest, **extra):
    p = {"name": guest, "confdir": rig.confdir, "vserver_cmd": vr.VSERVER}
    p.update(extra)
    return p


def agent(rig, guest, action, rsctmp, interval=None, timeout_ms=20000, check_level=None, **extra):
    return run_agent(AGENT, action, params(rig, guest, **extra), interval=interval, timeout_ms=timeout_ms,
                     check_level=check_level, rsctmp=rsctmp, instance="vs-" + guest)


def test_start_stop_twice_and_clean_stop_is_7(rig, rsctmp):
    n = "pyra-vs-a1"
    rig.build(n, xid=4801, ips=[vr.NET + "11"])
    assert agent(rig, n, "monitor", rsctmp).rc == 7                   # probe, never started
    for _ in range(2):
        r = agent(rig, n, "start", rsctmp)
        assert r.rc == 0, r
        assert rig.init_pid(n)
        assert vr.NET + "11" in vr.bridge_addresses()
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 0
    r = agent(rig, n, "monitor", rsctmp, interval=60000, check_level=10)
    assert r.rc == 0, r
    assert agent(rig, n, "monitor", rsctmp, interval=60000, check_level=5).rc == 0   # unknown level -> 0
    for _ in range(2):
        r = agent(rig, n, "stop", rsctmp)
        assert r.rc == 0, r
        assert rig.init_pid(n) is None
    assert vr.NET + "11" not in vr.bridge_addresses()
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 7   # clean stop
    assert agent(rig, n, "monitor", rsctmp).rc == 7


def test_crash_is_1_and_probe_after_crash_is_7(rig, rsctmp):
    n = "pyra-vs-a2"
    rig.build(n)
    assert agent(rig, n, "start", rsctmp).rc == 0
    rig.crash(n)
    r = agent(rig, n, "monitor", rsctmp, interval=10000)
    assert r.rc == 1 and "was started here" in r.exit_reason, r
    assert agent(rig, n, "monitor", rsctmp).rc == 7                   # a probe reports the truth: stopped
    assert agent(rig, n, "stop", rsctmp).rc == 0
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 7
    # restarted by the admin outside the cluster: the probe sees it
    assert rig.sim(n, "start").returncode == 0
    assert agent(rig, n, "monitor", rsctmp).rc == 0


def test_guest_ignoring_stop_is_killed_before_the_deadline(rig, rsctmp):
    # util-vserver gives up (kill sequence "15" only, guest ignores TERM): stop exits 1, guest still there
    n = "pyra-vs-a3"
    rig.build(n, xid=4803, ips=[vr.NET + "13"], killseq="15", ignore_term=True)
    assert agent(rig, n, "start", rsctmp).rc == 0
    r = agent(rig, n, "stop", rsctmp, timeout_ms=20000)
    assert r.rc == 0, r
    assert rig.init_pid(n) is None
    assert r.elapsed < 18
    assert vr.NET + "13" not in vr.bridge_addresses()                 # util-vserver's cleanup ran
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 7


def test_hanging_vserver_stop_is_cut_and_the_context_killed(rig, rsctmp):
    n = "pyra-vs-a4"
    rig.build(n, ips=[vr.NET + "14"], ignore_term=True, stop_hangs=True)
    assert agent(rig, n, "start", rsctmp).rc == 0
    timeout = 10.0
    r = agent(rig, n, "stop", rsctmp, timeout_ms=int(timeout * 1000))
    assert r.rc == 0, r
    assert not r.killed and r.elapsed < timeout - 0.5, r               # exited on its own, inside the budget
    assert rig.init_pid(n) is None
    rig.fault(n, "stop-hangs", False)
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 7


def test_config_dir_on_unmounted_filesystem(rig, rsctmp, tmp_path):
    """The seeds' layout: the config dir lives on shared storage (here a tmpfs) mounted before the guest."""
    n = "pyra-vs-a5"
    mnt = os.path.join(rig.root, "shared")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "pyra-vs-shared", mnt], check=True)
    try:
        confdir = os.path.join(mnt, "vservers")
        os.makedirs(confdir)
        rig.confdir = confdir
        other_node = str(tmp_path / "rsctmp-b")
        os.makedirs(other_node)
        rig.build(n, xid=4805, ips=[vr.NET + "15"])
        subprocess.run(["umount", mnt], check=True)
        # node without the storage: probe 7, stop 0, start 5 (not 6), validate-all at depth 10: 5
        assert agent(rig, n, "monitor", other_node).rc == 7
        assert agent(rig, n, "stop", other_node).rc == 0
        r = agent(rig, n, "start", other_node)
        assert r.rc == 5 and "not found" in r.exit_reason, r
        assert agent(rig, n, "validate-all", other_node).rc == 0               # depth 0: parameters only
        assert agent(rig, n, "validate-all", other_node, check_level=10).rc == 5
        # storage back: start; then the storage disappears under the running guest
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "pyra-vs-shared", mnt], check=True)
        rig.build(n, xid=4805, ips=[vr.NET + "15"])
        assert agent(rig, n, "start", rsctmp).rc == 0
        subprocess.run(["umount", "-l", mnt], check=True)
        assert not os.path.isdir(os.path.join(confdir, n))
        assert rig.init_pid(n)                                          # still running
        assert agent(rig, n, "monitor", rsctmp).rc == 0                 # probe finds it by its context
        r = agent(rig, n, "monitor", rsctmp, interval=10000)
        assert r.rc == 1, r
        r = agent(rig, n, "stop", rsctmp)
        assert r.rc == 0, r
        assert rig.init_pid(n) is None                                  # killed through vkill
        assert vr.NET + "15" not in vr.bridge_addresses()               # recorded addresses removed
        assert agent(rig, n, "monitor", rsctmp).rc == 7
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_addresses_checked_at_depth_10(rig, rsctmp):
    n = "pyra-vs-a6"
    rig.build(n, ips=[vr.NET + "16"])
    assert agent(rig, n, "start", rsctmp).rc == 0
    subprocess.run(["ip", "addr", "del", vr.NET + "16/32", "dev", vr.BRIDGE], check=True)
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 0    # depth 0 does not look
    r = agent(rig, n, "monitor", rsctmp, interval=60000, check_level=10)
    assert r.rc == 1 and vr.NET + "16" in r.exit_reason, r
    assert agent(rig, n, "monitor", rsctmp, interval=60000, check_level=10, check_ip="false").rc == 0
    assert agent(rig, n, "stop", rsctmp).rc == 0


def test_failed_start_and_config_errors(rig, rsctmp):
    n = "pyra-vs-a7"
    rig.build(n)
    rig.fault(n, "fail-start")
    r = agent(rig, n, "start", rsctmp)
    assert r.rc == 1 and "Failed to start" in r.exit_reason, r
    assert agent(rig, n, "stop", rsctmp).rc == 0
    rig.fault(n, "fail-start", False)
    assert agent(rig, n, "validate-all", rsctmp).rc == 0
    assert agent(rig, n, "validate-all", rsctmp, name="../etc").rc == 6
    assert agent(rig, n, "validate-all", rsctmp, confdir="relative/dir").rc == 6
    assert agent(rig, n, "validate-all", rsctmp, start_timeout_share="2").rc == 6
    assert agent(rig, n, "monitor", rsctmp, name="../etc").rc == 7       # never 6 from a probe
    assert agent(rig, n, "stop", rsctmp, name="../etc").rc == 0
    r = agent(rig, n, "start", rsctmp, vserver_cmd="/nonexistent/vserver")
    assert r.rc == 5, r
    assert agent(rig, n, "monitor", rsctmp, vserver_cmd="/nonexistent/vserver").rc == 7
    r = run_agent(AGENT, "monitor", {"confdir": rig.confdir}, rsctmp=rsctmp)   # name missing: probe 7
    assert r.rc == 7, r
    assert run_agent(AGENT, "start", {"confdir": rig.confdir}, rsctmp=rsctmp).rc == 6


def test_ocf_tester(rig):
    n = "pyra-vs-a8"
    rig.build(n, ips=[vr.NET + "18"])
    t = time.monotonic()
    rc, out = ocf_tester(AGENT, params(rig, n))
    assert rc == 0, out
    assert "passed all tests" in out, out
    assert rig.init_pid(n) is None
    assert time.monotonic() - t < 60
