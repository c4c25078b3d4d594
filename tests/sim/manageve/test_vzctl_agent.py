"""ocf:pyra:ManageVE with runtime=vzctl, end to end against the vzctl contract simulator (tests/fakes/vzctl).

No root needed: the simulator runs real process trees as the calling user. Every test gets its own
simulator root(s) under a tmp dir, so tests are isolated from each other and from other helpers.
"""
import os
import threading
import time

import pytest

from fakes.vzctl.simrig import VZCTL, VzSim
from harness import run_agent

AGENT = "ManageVE"


@pytest.fixture(params=["legacy", "vz7"])
def flavor(request):
    return request.param


@pytest.fixture
def sim(tmp_path, flavor):
    s = VzSim(tmp_path / "vz-a", flavor)
    yield s
    s.cleanup()


@pytest.fixture
def sim_b(tmp_path, flavor):
    s = VzSim(tmp_path / "vz-b", flavor)
    yield s
    s.cleanup()


def agent(sim, action, rsctmp, params=None, interval=None, timeout_ms=20000, meta=None, veid="101", **kw):
    p = {"veid": veid, "vzctl": VZCTL}
    p.update(params or {})
    return run_agent(AGENT, action, p, interval=interval, timeout_ms=timeout_ms, rsctmp=rsctmp,
                     instance=kw.pop("instance", "ve-res"), env=sim.env, meta=meta, **kw)


def check_reason(r):
    assert len(r.exit_reasons) == 1, r
    assert 0 < len(r.exit_reason.strip()) <= 128


def test_lifecycle(sim, rsctmp):
    sim.create("101")
    assert agent(sim, "monitor", rsctmp).rc == 7          # probe, never started
    r = agent(sim, "start", rsctmp)
    assert r.rc == 0, r
    assert sim.state("101") == "running"
    assert agent(sim, "start", rsctmp).rc == 0            # already running (vzctl itself would say 32)
    assert agent(sim, "monitor", rsctmp, interval=10000).rc == 0
    assert agent(sim, "stop", rsctmp).rc == 0
    assert sim.state("101") == "down"
    assert agent(sim, "monitor", rsctmp, interval=10000).rc == 7  # clean stop
    assert agent(sim, "stop", rsctmp).rc == 0             # already stopped


def test_vzctl_start_when_running_is_32_and_agent_accepts_it(sim, rsctmp):
    sim.create("101")
    sim.vzctl("start", "101")
    assert sim.vzctl("start", "101", check=False).returncode == 32
    assert sim.vzctl("stop", "101").returncode == 0
    assert sim.vzctl("stop", "101").returncode == 0       # stop when stopped: 0
    assert sim.vzctl("chkpnt", "101", check=False).returncode == 31


def test_monitor_is_one_status_query(sim, rsctmp):
    sim.create("101")
    assert agent(sim, "start", rsctmp).rc == 0
    sim.clear_calls()
    assert agent(sim, "monitor", rsctmp, interval=10000).rc == 0
    assert sim.calls() == ["status 101"]


def test_monitor_path_stays_lean(sim, rsctmp):
    """The monitor imports neither subprocess nor re/json/logging (each costs ms on every call)."""
    import subprocess
    from harness import REPO, agent_env
    sim.create("101")
    assert agent(sim, "start", rsctmp).rc == 0
    env = agent_env(AGENT, {"veid": "101", "vzctl": VZCTL}, interval=10000, rsctmp=rsctmp, instance="ve-res",
                    env=sim.env)
    code = ("import sys; sys.path.insert(0, %r); sys.argv = ['ManageVE', 'monitor']\n"
            "from pyra.agents.manageve import ManageVE\n"
            "rc = ManageVE().main()\n"
            "print(rc, sorted(m for m in ('subprocess', 're', 'json', 'logging', 'lxml') if m in sys.modules))"
            % os.path.join(REPO, "lib"))
    out = subprocess.run(["/usr/bin/python3", "-S", "-c", code], env=env, capture_output=True, text=True,
                         timeout=30).stdout
    assert out.strip() == "0 []", out
    assert open(os.path.join(REPO, "agents", AGENT)).readline().strip() == "#!/usr/bin/python3 -S"  # the shared launcher


def test_start_waits_for_init(sim, rsctmp):
    sim.create("101", BOOT_DELAY="1.0")
    r = agent(sim, "start", rsctmp)
    assert r.rc == 0, r
    assert r.elapsed >= 1.0
    assert (sim.root / "run/101/booted").exists()
    assert any(c.startswith("start 101 --wait") for c in sim.calls())


def test_start_without_wait(sim, rsctmp):
    sim.create("101", BOOT_DELAY="3")
    r = agent(sim, "start", rsctmp, params={"start_wait": "false"})
    assert r.rc == 0, r
    assert r.elapsed < 2.5
    assert not (sim.root / "run/101/booted").exists()


def test_crash_then_monitor_fails_probe_says_stopped(sim, rsctmp):
    sim.create("101")
    assert agent(sim, "start", rsctmp).rc == 0
    sim.vzctl("__crash", "101")
    r = agent(sim, "monitor", rsctmp, interval=10000)
    assert r.rc == 1, r
    check_reason(r)
    assert agent(sim, "monitor", rsctmp).rc == 7          # a probe reports "not running"
    assert agent(sim, "stop", rsctmp).rc == 0
    assert agent(sim, "monitor", rsctmp, interval=10000).rc == 7


def test_paused_is_degraded_on_vz7(sim, rsctmp, flavor):
    sim.create("101")
    assert agent(sim, "start", rsctmp).rc == 0
    sim.vzctl("__pause", "101")
    r = agent(sim, "monitor", rsctmp, interval=10000)
    if flavor == "vz7":
        assert sim.state("101") == "paused"
        assert r.rc == 190, r
        assert "paused" in r.exit_reason
        # start resumes a paused container
        assert agent(sim, "start", rsctmp).rc == 0
        assert sim.state("101") == "running"
    else:
        assert r.rc == 0  # legacy vzctl has no "paused": a frozen container still reads "running"
    assert agent(sim, "stop", rsctmp).rc == 0
    assert sim.state("101") == "down"


def test_suspended_is_not_running(sim, rsctmp, flavor):
    sim.create("101")
    sim.vzctl("start", "101")
    sim.vzctl("chkpnt", "101")                             # default dump file => "suspended"
    assert "suspended" in sim.status("101")
    assert agent(sim, "monitor", rsctmp).rc == 7


def test_missing_veid(sim, rsctmp):
    p = {"veid": None}
    r = agent(sim, "validate-all", rsctmp, params=p)
    assert r.rc == 6 and "veid" in r.exit_reason
    assert agent(sim, "start", rsctmp, params=p).rc == 6
    assert agent(sim, "monitor", rsctmp, params=p).rc == 7
    assert agent(sim, "stop", rsctmp, params=p).rc == 0


@pytest.mark.parametrize("bad", ["a/b", "-x", "..", "a b"])
def test_invalid_veid_is_6(sim, rsctmp, bad):
    r = agent(sim, "validate-all", rsctmp, veid=bad)
    assert r.rc == 6, r
    check_reason(r)


def test_container_not_here(sim, rsctmp):
    r = agent(sim, "start", rsctmp, veid="4242")
    assert r.rc == 5, r
    check_reason(r)
    assert agent(sim, "monitor", rsctmp, veid="4242").rc == 7
    assert agent(sim, "stop", rsctmp, veid="4242").rc == 0


def test_unknown_name_is_not_defined_here(sim, rsctmp):
    assert sim.vzctl("status", "nosuchname", check=False).returncode in (0, 2)
    assert agent(sim, "monitor", rsctmp, veid="nosuchname").rc == 7
    r = agent(sim, "start", rsctmp, veid="nosuchname")
    assert r.rc == 5, r
    assert agent(sim, "stop", rsctmp, veid="nosuchname").rc == 0


def test_vzctl_not_installed(sim, rsctmp):
    p = {"vzctl": "/nonexistent/vzctl"}
    assert agent(sim, "monitor", rsctmp, params=p).rc == 7
    assert agent(sim, "stop", rsctmp, params=p).rc == 0
    r = agent(sim, "validate-all", rsctmp, params=p)
    assert r.rc == 5 and "vzctl" in r.exit_reason
    assert agent(sim, "start", rsctmp, params=p).rc == 5


def test_stop_and_probe_without_config_use_the_record(sim, rsctmp):
    sim.create("101")
    assert agent(sim, "start", rsctmp).rc == 0
    assert agent(sim, "monitor", rsctmp, params={"veid": None}, interval=10000).rc == 0
    assert agent(sim, "stop", rsctmp, params={"veid": None}).rc == 0
    assert sim.state("101") == "down"


def test_names_and_uuids(sim, rsctmp, flavor):
    ctid = "1b6e3a20-0c4d-4d7c-9a7e-5f1b2a3c4d5e" if flavor == "vz7" else "102"
    sim.create(ctid, name="web")
    assert agent(sim, "start", rsctmp, veid="web").rc == 0
    assert sim.state(ctid) == "running"
    assert agent(sim, "monitor", rsctmp, veid="web", interval=10000).rc == 0
    assert agent(sim, "monitor", rsctmp, veid=ctid, interval=10000, instance="other").rc == 0
    assert agent(sim, "stop", rsctmp, veid="web").rc == 0
    assert sim.state(ctid) == "down"


def test_lock_is_retried(sim, rsctmp):
    sim.create("101")
    release = threading.Event()

    def holder():
        with sim.hold_lock("101"):
            release.wait(10)
    t = threading.Thread(target=holder)
    t.start()
    time.sleep(0.2)
    threading.Timer(1.0, release.set).start()
    r = agent(sim, "start", rsctmp)
    t.join()
    assert r.rc == 0, r
    assert r.elapsed >= 0.8
    starts = [c for c in sim.calls() if c.startswith("start")]
    assert len(starts) >= 2
    assert sim.state("101") == "running"


def test_lock_never_released_fails_before_the_deadline(sim, rsctmp):
    sim.create("101")
    with sim.hold_lock("101"):
        r = agent(sim, "start", rsctmp, timeout_ms=4000)
    assert r.rc == 1 and not r.killed, r
    assert "locked" in r.exit_reason
    assert r.elapsed < 4.0


def test_slow_halt_is_waited_for(sim, rsctmp):
    sim.create("101", HALT_DELAY="1")
    assert agent(sim, "start", rsctmp).rc == 0
    r = agent(sim, "stop", rsctmp)
    assert r.rc == 0, r
    assert r.elapsed >= 1.0
    assert not any("--fast" in c for c in sim.calls())


def test_stuck_init_is_killed_after_stop_timeout(sim, rsctmp):
    sim.create("101", IGNORE_HALT="yes")
    assert agent(sim, "start", rsctmp).rc == 0
    pid = sim.pid("101")
    r = agent(sim, "stop", rsctmp, params={"stop_timeout": "2"})
    assert r.rc == 0, r
    assert 1.8 <= r.elapsed < 6, r
    assert any("--fast" in c for c in sim.calls())
    assert sim.state("101") == "down"
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"


def test_stuck_init_is_killed_within_the_operation_timeout(sim, rsctmp):
    sim.create("101", IGNORE_HALT="yes")
    assert agent(sim, "start", rsctmp).rc == 0
    r = agent(sim, "stop", rsctmp, timeout_ms=5000)  # stop_timeout 60 s does not fit: staged inside 5 s
    assert r.rc == 0, r
    assert not r.killed and r.elapsed < 5.0
    assert sim.state("101") == "down"


@pytest.mark.parametrize("fail,word", [("start", "init"), ("disabled", "disabled")])
def test_start_failure_has_vzctls_reason(sim, rsctmp, fail, word):
    if fail == "disabled":
        sim.create("101", DISABLED="yes")
    else:
        sim.create("101", SIM_FAIL="start")
    r = agent(sim, "start", rsctmp)
    assert r.rc == 1, r
    check_reason(r)
    assert word in r.exit_reason.lower()
    assert agent(sim, "monitor", rsctmp, interval=10000).rc in (1, 7)


def _migrate(a, b, rsctmp_a, rsctmp_b, dumpdir, params=None, from_rc=0):
    p = {"dumpdir": str(dumpdir)}
    p.update(params or {})
    r = agent(a, "migrate_to", rsctmp_a, params=p, meta={"migrate_target": "node-b", "migrate_source": "node-a"})
    assert r.rc == 0, r
    r2 = agent(b, "migrate_from", rsctmp_b, params=p,
               meta={"migrate_target": "node-b", "migrate_source": "node-a"})
    assert r2.rc == from_rc, r2
    return r2


def test_checkpoint_migration(sim, sim_b, tmp_path):
    dumpdir = tmp_path / "shared-dump"
    dumpdir.mkdir()
    ra, rb = str(tmp_path / "rsc-a"), str(tmp_path / "rsc-b")
    for s in (sim, sim_b):
        s.create("101")
    p = {"dumpdir": str(dumpdir)}
    assert agent(sim, "start", ra, params=p).rc == 0
    time.sleep(1.0)
    before = sim.counter("101")
    assert before and before >= 3
    _migrate(sim, sim_b, ra, rb, dumpdir)
    assert sim.state("101") == "down"
    assert sim_b.state("101") == "running"
    time.sleep(0.5)
    assert sim_b.counter("101") >= before             # state carried over, not a reboot (counter from 0)
    assert list(dumpdir.iterdir()) == []               # no dump left behind
    t = time.monotonic()
    assert agent(sim, "stop", ra, params=p).rc == 0     # source stop after migration: quick, 0
    assert time.monotonic() - t < 2
    assert agent(sim, "monitor", ra, params=p, interval=10000).rc == 7
    assert agent(sim_b, "monitor", rb, params=p, interval=10000).rc == 0
    # and back
    _migrate(sim_b, sim, rb, ra, dumpdir)
    assert sim.state("101") == "running" and sim_b.state("101") == "down"


def test_failed_restore_keeps_dump_and_recovery_restores(sim, sim_b, tmp_path):
    dumpdir = tmp_path / "shared-dump"
    dumpdir.mkdir()
    ra, rb = str(tmp_path / "rsc-a"), str(tmp_path / "rsc-b")
    sim.create("101")
    sim_b.create("101", SIM_FAIL="restore")
    p = {"dumpdir": str(dumpdir)}
    assert agent(sim, "start", ra, params=p).rc == 0
    time.sleep(1.0)
    r = _migrate(sim, sim_b, ra, rb, dumpdir, from_rc=1)
    check_reason(r)
    assert "restore" in r.exit_reason
    dump = dumpdir / "ve-res.dump"
    assert dump.exists()
    dumped = int(dump.read_text().split("counter=")[1])
    # Pacemaker's recovery: stop both sides, start on the source
    assert agent(sim_b, "stop", rb, params=p).rc == 0
    assert agent(sim, "stop", ra, params=p).rc == 0
    assert agent(sim, "start", ra, params=p).rc == 0
    assert sim.state("101") == "running"
    time.sleep(0.3)
    assert sim.counter("101") >= dumped                 # restored, not rebooted
    assert not dump.exists()


def test_failed_checkpoint_keeps_source_running(sim, tmp_path, rsctmp):
    dumpdir = tmp_path / "d"
    dumpdir.mkdir()
    sim.create("101", SIM_FAIL="chkpnt")
    p = {"dumpdir": str(dumpdir)}
    assert agent(sim, "start", rsctmp, params=p).rc == 0
    r = agent(sim, "migrate_to", rsctmp, params=p, meta={"migrate_target": "node-b"})
    assert r.rc == 1, r
    assert "checkpoint" in r.exit_reason
    assert agent(sim, "monitor", rsctmp, params=p, interval=10000).rc == 0


def test_migration_restart_and_off(sim, sim_b, tmp_path):
    ra, rb = str(tmp_path / "rsc-a"), str(tmp_path / "rsc-b")
    for s in (sim, sim_b):
        s.create("101")
    assert agent(sim, "start", ra).rc == 0
    r = agent(sim, "migrate_to", ra, params={"migration": "off"}, meta={"migrate_target": "b"})
    assert r.rc == 1 and "migration=off" in r.exit_reason
    assert sim.state("101") == "running"
    _migrate(sim, sim_b, ra, rb, tmp_path, params={"migration": "restart"})
    assert sim.state("101") == "down" and sim_b.state("101") == "running"
    assert not [c for c in sim.calls() + sim_b.calls() if c.startswith(("chkpnt", "restore"))]


def test_heartbeat_compatible_parameters(sim, rsctmp):
    """Switching provider from heartbeat to pyra needs only veid (numeric CTID), nothing else."""
    sim.create("101")
    env = dict(sim.env, PATH=os.path.dirname(VZCTL) + ":/usr/sbin:/usr/bin:/sbin:/bin")
    r = run_agent(AGENT, "start", {"veid": "101"}, rsctmp=rsctmp, env=env)
    assert r.rc == 0, r
    assert run_agent(AGENT, "stop", {"veid": "101"}, rsctmp=rsctmp, env=env).rc == 0
