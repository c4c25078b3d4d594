"""Fault injection for VServer (issue 8): the agent SIGKILLed (as pacemaker-execd kills a timed-out agent: its
whole process group) mid-start while the guest's initscripts run, and mid-stop while `vserver stop` hangs; the
re-run action converges, the guest runs at most once, the state file stays whole."""
import pytest

import faultkit
from harness import run_agent
from lab.rigs import vserver_rig as vr

pytestmark = [pytest.mark.root, pytest.mark.faults]

AGENT = "VServer"


def params(rig, guest, **extra):
    return dict({"name": guest, "confdir": rig.confdir, "vserver_cmd": vr.VSERVER}, **extra)


def agent(rig, guest, action, rsctmp, **kw):
    return run_agent(AGENT, action, params(rig, guest), rsctmp=rsctmp, instance="vs-" + guest, **kw)


def kill_mid(rig, guest, action, rsctmp, after, timeout_ms=30000):
    proc = faultkit.spawn(AGENT, action, params(rig, guest), rsctmp, "vs-" + guest, timeout_ms=timeout_ms)
    faultkit.kill_group(proc, after=after)


def record(rsctmp, guest):
    return faultkit.state_lines(rsctmp, AGENT, "vs-" + guest)


def test_agent_killed_mid_start_then_start_again(rig, rsctmp):
    n = "pyra-vs-f1"
    rig.build(n, ips=[vr.NET + "31"])
    rig.fault(n, "start-slow", value="3")
    kill_mid(rig, n, "start", rsctmp, after=1.5)
    first = rig.init_pid(n)
    assert first, "the guest's context should exist (its initscripts were running)"
    assert "phase=started" in record(rsctmp, n)
    rig.fault(n, "start-slow", False)
    r = agent(rig, n, "start", rsctmp)
    assert r.rc == 0, r
    assert rig.init_pid(n) == first                                      # adopted, not started twice
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 0
    assert agent(rig, n, "stop", rsctmp).rc == 0
    assert rig.init_pid(n) is None and record(rsctmp, n) is None
    assert vr.NET + "31" not in vr.bridge_addresses()


def test_agent_killed_mid_stop_then_stop_again(rig, rsctmp):
    n = "pyra-vs-f2"
    rig.build(n, ips=[vr.NET + "32"], ignore_term=True, stop_hangs=True)
    assert agent(rig, n, "start", rsctmp).rc == 0
    kill_mid(rig, n, "stop", rsctmp, after=1.5, timeout_ms=60000)
    assert rig.init_pid(n), "the guest ignores TERM: it must still run"
    assert "phase=started" in record(rsctmp, n)
    r = agent(rig, n, "monitor", rsctmp, interval=10000)
    assert r.rc == 0, r                                                  # running, not "stopped"
    r = agent(rig, n, "stop", rsctmp, timeout_ms=10000)
    assert r.rc == 0 and not r.killed and r.elapsed < 10.0, r
    assert rig.init_pid(n) is None and record(rsctmp, n) is None
    rig.fault(n, "stop-hangs", False)
    assert agent(rig, n, "monitor", rsctmp, interval=10000).rc == 7
