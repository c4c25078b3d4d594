"""Fault injection for ManageVE (issue 8): a vzctl that hangs forever, the agent SIGKILLed mid-start and
mid-stop (vzctl simulator and real LXC), and an LXC config file that disappears while the container runs.

A hanging vzctl is a wrapper around the contract simulator (tests/fakes/vzctl) that ignores SIGTERM and sleeps
when called for one sub-command; the agent must end every action before its deadline with a reason, and a
monitor or probe that cannot get an answer must never say "stopped" (7).
"""
import os

import pytest

import faultkit
from fakes.vzctl.simrig import VZCTL, VzSim
from harness import run_agent
from lab.rigs import lxc_ve

pytestmark = [pytest.mark.root, pytest.mark.faults]

AGENT = "ManageVE"


@pytest.fixture
def sim(tmp_path):
    s = VzSim(tmp_path / "vz", "vz7")
    yield s
    s.cleanup()


def hanging_vzctl(tmp_path, subcommand):
    return faultkit.hanging_tool(tmp_path / ("vzctl-hangs-on-" + subcommand), VZCTL, subcommand)


def vz(sim, action, rsctmp, vzctl=VZCTL, interval=None, timeout_ms=20000, **params):
    p = dict({"veid": "101", "vzctl": vzctl}, **params)
    return run_agent(AGENT, action, p, interval=interval, timeout_ms=timeout_ms, rsctmp=rsctmp,
                     instance="ve-flt", env=sim.env)


# ------------------------------------------------------------------------------------ vzctl hangs
def test_hanging_status_never_reads_as_stopped(sim, rsctmp, tmp_path):
    sim.create("101")
    assert vz(sim, "start", rsctmp).rc == 0
    stuck = hanging_vzctl(tmp_path, "status")
    r = vz(sim, "monitor", rsctmp, vzctl=stuck, interval=10000, timeout_ms=4000)
    assert r.rc == 1 and not r.killed and r.elapsed < 4.0, r
    assert "vzctl" in r.exit_reason and "time" in r.exit_reason, r
    r = vz(sim, "monitor", rsctmp, vzctl=stuck, timeout_ms=4000)           # a probe: unsure is not 7
    assert r.rc not in (0, 7) and not r.killed and r.elapsed < 4.0, r
    faultkit.hung_wrappers_gone(stuck)
    assert vz(sim, "stop", rsctmp).rc == 0


@pytest.mark.parametrize("sub", ["start", "stop"])
def test_hanging_start_or_stop_is_bounded(sim, rsctmp, tmp_path, sub):
    sim.create("101")
    if sub == "stop":
        assert vz(sim, "start", rsctmp).rc == 0
    stuck = hanging_vzctl(tmp_path, sub)
    r = vz(sim, sub, rsctmp, vzctl=stuck, timeout_ms=5000)
    assert r.rc == 1 and not r.killed and r.elapsed < 5.0, r
    assert r.exit_reason, r
    faultkit.hung_wrappers_gone(stuck)
    if sub == "stop":
        assert sim.state("101") == "running"                                # stop failed: Pacemaker fences
        assert vz(sim, "monitor", rsctmp, interval=10000).rc == 0
    assert vz(sim, "stop", rsctmp).rc == 0
    assert sim.state("101") == "down"


# ------------------------------------------------------------------------------------ the agent killed
def spawn(action, params, rsctmp, env=None, timeout_ms=30000, instance="ve-flt"):
    return faultkit.spawn(AGENT, action, params, rsctmp, instance, timeout_ms=timeout_ms, env=env)


def record(rsctmp, instance="ve-flt"):
    return faultkit.state_lines(rsctmp, AGENT, instance)


def test_vzctl_agent_killed_mid_start_then_start_again(sim, rsctmp):
    """SIGKILL the agent while `vzctl start --wait` waits for a slow init: the re-run start converges (the
    container runs once), monitor and stop are exact."""
    sim.create("101", BOOT_DELAY="3")
    faultkit.kill_group(spawn("start", {"veid": "101", "vzctl": VZCTL}, rsctmp, env=sim.env), after=1.0)
    assert "phase=started" in record(rsctmp)
    r = vz(sim, "start", rsctmp)
    assert r.rc == 0, r
    assert sim.state("101") == "running"
    assert vz(sim, "monitor", rsctmp, interval=10000).rc == 0
    assert vz(sim, "stop", rsctmp).rc == 0
    assert record(rsctmp) is None and sim.state("101") == "down"


def test_vzctl_agent_killed_mid_stop_then_stop_again(sim, rsctmp):
    sim.create("101", IGNORE_HALT="yes")
    assert vz(sim, "start", rsctmp).rc == 0
    faultkit.kill_group(spawn("stop", {"veid": "101", "vzctl": VZCTL, "stop_timeout": "30"}, rsctmp, env=sim.env,
                              timeout_ms=60000), after=1.5)
    assert "phase=started" in record(rsctmp)
    assert vz(sim, "monitor", rsctmp, interval=10000).rc == 0               # still running, not "stopped"
    r = vz(sim, "stop", rsctmp, stop_timeout="1")
    assert r.rc == 0, r
    assert sim.state("101") == "down" and record(rsctmp) is None


@pytest.fixture(scope="module")
def deaf_container():
    name = "pyra-ve-fdeaf"
    lxc_ve.make_container(name, halt_ignored=True, force=True)
    yield name
    lxc_ve.cleanup([name])


def lxc_params(name, **extra):
    return dict({"veid": name, "runtime": "lxc", "lxc_path": str(lxc_ve.LXCPATH)}, **extra)


@pytest.mark.lxc
def test_lxc_agent_killed_mid_stop_then_stop_again(deaf_container, rsctmp):
    name = deaf_container
    p = lxc_params(name)
    assert run_agent(AGENT, "start", p, rsctmp=rsctmp, instance="ve-flt").rc == 0
    faultkit.kill_group(spawn("stop", dict(p, stop_timeout="30"), rsctmp, timeout_ms=60000), after=1.5)
    assert lxc_ve.state(name) == "RUNNING"
    assert "phase=started" in record(rsctmp)
    assert run_agent(AGENT, "monitor", p, rsctmp=rsctmp, instance="ve-flt", interval=10000).rc == 0
    r = run_agent(AGENT, "stop", dict(p, stop_timeout="1"), rsctmp=rsctmp, instance="ve-flt")
    assert r.rc == 0, r
    assert lxc_ve.state(name) == "STOPPED" and record(rsctmp) is None


@pytest.mark.lxc
def test_lxc_config_file_gone_while_running(tmp_path, rsctmp):
    """lxc_config on shared storage that vanishes while the container runs: the probe still finds it (0, not a
    false 7) and stop still stops it, by the identity recorded at start."""
    name = "pyra-ve-fcfg"
    p, other, cfg = lxc_ve.config_file_container(name, tmp_path)
    try:
        assert run_agent(AGENT, "start", p, rsctmp=rsctmp, instance="ve-cfg").rc == 0
        init = lxc_ve.init_pid(name, lxcpath=other)
        assert init
        cfg.unlink()
        r = run_agent(AGENT, "monitor", p, rsctmp=rsctmp, instance="ve-cfg")
        assert r.rc == 0, r
        r = run_agent(AGENT, "monitor", p, rsctmp=rsctmp, instance="ve-cfg", interval=10000)
        assert r.rc == 0, r
        r = run_agent(AGENT, "stop", p, rsctmp=rsctmp, instance="ve-cfg")
        assert r.rc == 0, r
        assert lxc_ve.state(name, lxcpath=other) != "RUNNING"      # (rc=1: a -f container is gone once stopped)
        assert not os.path.exists("/proc/%d" % init) or open("/proc/%d/stat" % init).read().split(") ")[1][0] == "Z"
        assert run_agent(AGENT, "monitor", p, rsctmp=rsctmp, instance="ve-cfg").rc == 7
    finally:
        lxc_ve.stop(name, lxcpath=other)
        lxc_ve.destroy(name)
