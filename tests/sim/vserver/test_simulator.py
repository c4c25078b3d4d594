"""The util-vserver contract simulator itself: exit codes, messages, real namespaces, kill sequence, faults.

If the double drifts from util-vserver's contract, every agent test built on it is wrong, so it has its own
tests (contract in pyra.backends.vserver's docstring and research/anchors-seeds.md §4).
"""
import os
import subprocess
import time

import pytest

from lab.rigs import vserver_rig as vr

pytestmark = pytest.mark.root


def test_exit_codes_and_messages(rig):
    rig.build("pyra-vs-sim1", xid=4711)
    r = rig.sim("pyra-vs-sim1", "status")
    assert (r.returncode, r.stdout.strip()) == (3, "Vserver 'pyra-vs-sim1' is stopped")
    assert rig.sim("pyra-vs-sim1", "running").returncode == 1
    r = rig.sim("pyra-vs-sim1", "stop")
    assert r.returncode == 0 and "is not running" in r.stderr
    assert rig.sim("pyra-vs-sim1", "frobnicate").returncode == 2
    r = subprocess.run([vr.VSERVER, "pyra-vs-nosuch", "status"], capture_output=True, text=True, env=rig.env())
    assert r.returncode == 5 and "Can not find a vserver-setup at '%s/pyra-vs-nosuch/'" % rig.confdir in r.stderr
    assert rig.sim("pyra-vs-sim1", "start").returncode == 0
    r = rig.sim("pyra-vs-sim1", "start")
    assert r.returncode == 0 and "already running" in r.stderr
    assert rig.sim("pyra-vs-sim1", "running").returncode == 0
    r = rig.sim("pyra-vs-sim1", "status")
    assert r.returncode == 0 and "is running at context '4711'" in r.stdout
    # bare name resolves under PYRA_VS_CONFDIR
    assert subprocess.run([vr.VSERVER, "pyra-vs-sim1", "running"], env=rig.env()).returncode == 0
    assert rig.sim("pyra-vs-sim1", "stop").returncode == 0
    assert rig.sim("pyra-vs-sim1", "running").returncode == 1


def test_guest_is_a_real_namespaced_process_tree(rig):
    rig.build("pyra-vs-sim2")
    assert rig.sim("pyra-vs-sim2", "start").returncode == 0
    pid = rig.init_pid("pyra-vs-sim2")
    assert pid
    for ns in ("pid", "mnt", "uts"):
        assert os.readlink("/proc/%d/ns/%s" % (pid, ns)) != os.readlink("/proc/self/ns/%s" % ns)
    assert rig.sim("pyra-vs-sim2", "exec", "hostname").stdout.strip() == "pyra-vs-sim2"
    ps = rig.sim("pyra-vs-sim2", "exec", "ps").stdout
    assert "sleep 2147483647" in ps and len(ps.splitlines()) >= 4
    xid = int(rig.context("pyra-vs-sim2")["xid"])
    assert xid >= 49152          # dynamic context
    stat = subprocess.run([vr.VSTAT], capture_output=True, text=True).stdout
    assert stat.startswith("CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME")
    assert any(line.split()[0] == str(xid) and line.split()[-1] == "pyra-vs-sim2" for line in stat.splitlines())
    # crash: the kernel kills the namespace; status says stopped, start works again
    rig.crash("pyra-vs-sim2")
    assert rig.sim("pyra-vs-sim2", "status").returncode == 3
    assert rig.sim("pyra-vs-sim2", "start").returncode == 0
    assert rig.sim("pyra-vs-sim2", "stop").returncode == 0
    assert rig.init_pid("pyra-vs-sim2") is None


def test_kill_sequence_vkill_and_addresses(rig):
    rig.build("pyra-vs-sim3", xid=4712, ips=[vr.NET + "31"], killseq="15", ignore_term=True)
    assert rig.sim("pyra-vs-sim3", "start").returncode == 0
    assert vr.NET + "31" in vr.bridge_addresses()
    t = time.monotonic()
    r = rig.sim("pyra-vs-sim3", "stop")
    assert r.returncode == 1 and "still running unexpectedly" in r.stderr
    assert time.monotonic() - t < 6
    assert rig.init_pid("pyra-vs-sim3")
    assert subprocess.run([vr.VKILL, "--xid", "4712", "-s", "9"]).returncode == 0
    assert rig.wait_gone("pyra-vs-sim3")
    assert subprocess.run([vr.VKILL, "--xid", "4712", "-s", "9"], capture_output=True).returncode == 1
    assert vr.NET + "31" in vr.bridge_addresses()       # vkill does not clean up; `stop` does
    assert rig.sim("pyra-vs-sim3", "stop").returncode == 0
    assert vr.NET + "31" not in vr.bridge_addresses()
    # the default kill sequence (15 5 9) ends a TERM-deaf guest by itself; a short one here
    (rig.cfg("pyra-vs-sim3") / "apps/init/killseq").write_text("15 0.5 9\n")
    assert rig.sim("pyra-vs-sim3", "start").returncode == 0
    assert rig.sim("pyra-vs-sim3", "stop").returncode == 0
    assert rig.init_pid("pyra-vs-sim3") is None


def test_stop_hangs_and_fail_start(rig):
    rig.build("pyra-vs-sim4", stop_hangs=True)
    rig.fault("pyra-vs-sim4", "fail-start")
    assert rig.sim("pyra-vs-sim4", "start").returncode == 1
    rig.fault("pyra-vs-sim4", "fail-start", False)
    assert rig.sim("pyra-vs-sim4", "start").returncode == 0
    with pytest.raises(subprocess.TimeoutExpired):
        rig.sim("pyra-vs-sim4", "stop", timeout=1)
    assert rig.init_pid("pyra-vs-sim4")
