"""ocf:pyra:ManageVE with runtime=lxc on real busybox LXC containers (lab/rigs/lxc_ve.py).

Single host: lifecycle, crash memory, a container whose init ignores the halt signal, a container that is
not defined. Two "nodes" (network + mount namespaces ve-n1/ve-n2 sharing the lxcpath): the container is
invisible from the other node, moves by stop/start (migration=restart), and by checkpoint where a CRIU >= 4.1
is installed; where it is not, validate-all refuses migration=checkpoint and a migrate_to keeps the source
running.
"""
import os
import signal
import subprocess
import time

import pytest

from harness import agent_env, agent_path, run_agent
from lab.rigs import lxc_ve, lxc_ve_fakecriu

pytestmark = [pytest.mark.root, pytest.mark.lxc]

AGENT = "ManageVE"
CT = "pyra-ve-t1"
CT_DEAF = "pyra-ve-deaf"
CT_MIG = "pyra-ve-mig"
LXCPATH = str(lxc_ve.LXCPATH)


def params(name, **extra):
    p = {"veid": name, "runtime": "lxc", "lxc_path": LXCPATH}
    p.update(extra)
    return p


def agent(action, name, rsctmp, interval=None, timeout_ms=30000, meta=None, **extra):
    return run_agent(AGENT, action, params(name, **extra), interval=interval, timeout_ms=timeout_ms,
                     rsctmp=rsctmp, instance="ve-" + name, meta=meta)


def node_agent(node, action, name, rsctmp, interval=None, timeout_ms=30000, meta=None, env=None, **extra):
    """Run the agent inside a node's namespaces, like pacemaker-execd on that node."""
    env = agent_env(agent_path(AGENT), params(name, **extra), interval=interval, timeout_ms=timeout_ms,
                    rsctmp=rsctmp, instance="ve-" + name, meta=meta, env=env)
    t = time.monotonic()
    r = subprocess.run(node.wrap([agent_path(AGENT), action]), env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout_ms / 1000 + 10)
    return r.returncode, r.stderr, time.monotonic() - t


@pytest.fixture(scope="module")
def containers():
    lxc_ve.make_container(CT, force=True)
    lxc_ve.make_container(CT_DEAF, halt_ignored=True, force=True)
    yield
    lxc_ve.cleanup([CT, CT_DEAF])


def test_lifecycle(containers, rsctmp):
    assert agent("monitor", CT, rsctmp).rc == 7
    r = agent("start", CT, rsctmp)
    assert r.rc == 0, r
    assert lxc_ve.state(CT) == "RUNNING"
    assert agent("start", CT, rsctmp).rc == 0
    c1 = lxc_ve.next_counter(CT, None)
    assert c1 is not None, "the workload never wrote its counter"
    assert agent("monitor", CT, rsctmp, interval=10000).rc == 0
    c2 = lxc_ve.next_counter(CT, c1)
    assert c2 is not None and c2 > c1                  # the workload really runs
    r = agent("stop", CT, rsctmp)
    assert r.rc == 0, r
    assert lxc_ve.state(CT) == "STOPPED"
    assert r.elapsed < 5                                # busybox halts in ~2 s on the halt signal
    assert agent("monitor", CT, rsctmp, interval=10000).rc == 7
    assert agent("stop", CT, rsctmp).rc == 0           # lxc-stop says 2 (not running): still 0


def test_crash_is_1_probe_is_7(containers, rsctmp):
    assert agent("start", CT, rsctmp).rc == 0
    pid = lxc_ve.init_pid(CT)
    assert pid
    os.kill(pid, signal.SIGKILL)
    for _ in range(600):                               # up to a minute on a busy machine
        if lxc_ve.state(CT) == "STOPPED":
            break
        time.sleep(0.1)
    r = agent("monitor", CT, rsctmp, interval=10000)
    assert r.rc == 1, r
    assert len(r.exit_reasons) == 1
    assert agent("monitor", CT, rsctmp).rc == 7
    assert agent("stop", CT, rsctmp).rc == 0
    assert agent("monitor", CT, rsctmp, interval=10000).rc == 7


def test_frozen_is_degraded_and_start_thaws(containers, rsctmp):
    assert agent("start", CT, rsctmp).rc == 0
    lxc_ve.run(["lxc-freeze", "-P", LXCPATH, "-n", CT])
    try:
        r = agent("monitor", CT, rsctmp, interval=10000)
        assert r.rc == 190, r
        assert "frozen" in r.exit_reason
        assert agent("start", CT, rsctmp).rc == 0
        assert lxc_ve.state(CT) == "RUNNING"
    finally:
        lxc_ve.run(["lxc-unfreeze", "-P", LXCPATH, "-n", CT], check=False)
    assert agent("stop", CT, rsctmp).rc == 0
    assert lxc_ve.state(CT) == "STOPPED"


def test_halt_ignored_is_killed_after_stop_timeout(containers, rsctmp):
    assert agent("start", CT_DEAF, rsctmp).rc == 0
    r = agent("stop", CT_DEAF, rsctmp, stop_timeout="2")
    assert r.rc == 0, r
    assert 1.8 <= r.elapsed < 6, r
    assert lxc_ve.state(CT_DEAF) == "STOPPED"


def test_halt_ignored_is_killed_before_the_deadline(containers, rsctmp):
    assert agent("start", CT_DEAF, rsctmp).rc == 0
    r = agent("stop", CT_DEAF, rsctmp, timeout_ms=6000)    # stop_timeout 60 s does not fit in 6 s
    assert r.rc == 0, r
    assert not r.killed and r.elapsed < 6.0
    assert lxc_ve.state(CT_DEAF) == "STOPPED"


def test_undefined_container(rsctmp):
    r = agent("start", "pyra-ve-nosuch", rsctmp)
    assert r.rc == 5, r
    assert "not defined" in r.exit_reason
    assert agent("monitor", "pyra-ve-nosuch", rsctmp).rc == 7
    assert agent("stop", "pyra-ve-nosuch", rsctmp).rc == 0


def test_container_from_a_config_file(tmp_path, rsctmp):
    """lxc_config: a container that is not defined in lxc_path, started with lxc-start -f."""
    name = "pyra-ve-cfg"
    p, other, cfg = lxc_ve.config_file_container(name, tmp_path)
    try:
        assert run_agent(AGENT, "monitor", p, rsctmp=rsctmp).rc == 7
        r = run_agent(AGENT, "start", p, rsctmp=rsctmp)
        assert r.rc == 0, r
        assert lxc_ve.state(name, lxcpath=other) == "RUNNING"
        assert run_agent(AGENT, "monitor", p, rsctmp=rsctmp, interval=10000).rc == 0
        assert run_agent(AGENT, "stop", p, rsctmp=rsctmp).rc == 0
        assert run_agent(AGENT, "monitor", p, rsctmp=rsctmp, interval=10000).rc == 7
        cfg.unlink()
        assert run_agent(AGENT, "monitor", p, rsctmp=rsctmp).rc == 7
        r = run_agent(AGENT, "start", p, rsctmp=rsctmp)
        assert r.rc == 5 and "lxc_config" in r.exit_reason, r
    finally:
        lxc_ve.stop(name, lxcpath=other)
        lxc_ve.destroy(name)


def test_lxc_params_need_lxc_runtime(rsctmp):
    r = run_agent(AGENT, "validate-all", {"veid": "101", "lxc_path": LXCPATH}, rsctmp=rsctmp)
    assert r.rc == 6 and "runtime=lxc" in r.exit_reason


def _criu_ok():
    from pyra.backends.lxc import CRIU_MIN, parse_criu_version
    try:
        out = subprocess.run(["criu", "--version"], capture_output=True, text=True, timeout=10).stdout
    except FileNotFoundError:
        return False
    v = parse_criu_version(out)
    return bool(v and v[:2] >= CRIU_MIN)


def test_checkpoint_migration_refused_or_working(containers, rsctmp):
    """migration=checkpoint (the default) is refused for a CRIU that cannot dump only where a migration is
    configured: a plain LXC resource validates anywhere, one with allow-migrate=true only where CRIU works."""
    assert agent("validate-all", CT, rsctmp).rc == 0
    r = agent("validate-all", CT, rsctmp, meta={"allow_migrate": "true"}, migration="checkpoint")
    if _criu_ok():
        assert r.rc == 0, r
    else:
        assert r.rc == 5, r
        assert "CRIU >= 4.1" in r.exit_reason and "migration=restart" in r.exit_reason
    assert agent("validate-all", CT, rsctmp, meta={"allow_migrate": "true"}, migration="restart").rc == 0


@pytest.fixture(scope="module")
def nodes():
    n1, n2 = lxc_ve.Node("ve-n1").up(), lxc_ve.Node("ve-n2").up()
    lxc_ve.make_container(CT_MIG, force=True)
    yield n1, n2
    lxc_ve.cleanup([CT_MIG], [n1, n2])


def test_two_nodes_restart_migration(nodes, tmp_path):
    n1, n2 = nodes
    r1, r2 = str(tmp_path / "rsc-n1"), str(tmp_path / "rsc-n2")
    meta = {"migrate_source": "n1", "migrate_target": "n2"}
    assert node_agent(n1, "monitor", CT_MIG, r1)[0] == 7
    rc, err, _ = node_agent(n1, "start", CT_MIG, r1)
    assert rc == 0, err
    assert lxc_ve.state(CT_MIG, node=n1) == "RUNNING"
    assert lxc_ve.state(CT_MIG, node=n2) == "STOPPED"          # other node: abstract socket not visible
    assert node_agent(n2, "monitor", CT_MIG, r2)[0] == 7      # probe on the other node
    rc, err, _ = node_agent(n1, "migrate_to", CT_MIG, r1, meta=meta, migration="restart")
    assert rc == 0, err
    rc, err, _ = node_agent(n2, "migrate_from", CT_MIG, r2, meta=meta, migration="restart")
    assert rc == 0, err
    assert lxc_ve.state(CT_MIG, node=n2) == "RUNNING"
    assert lxc_ve.state(CT_MIG, node=n1) == "STOPPED"
    rc, err, dt = node_agent(n1, "stop", CT_MIG, r1)
    assert rc == 0 and dt < 2, err
    assert node_agent(n1, "monitor", CT_MIG, r1, interval=10000)[0] == 7
    assert node_agent(n2, "monitor", CT_MIG, r2, interval=10000)[0] == 0
    rc, err, _ = node_agent(n2, "stop", CT_MIG, r2)
    assert rc == 0, err
    assert lxc_ve.state(CT_MIG, node=n2) == "STOPPED"


def test_two_nodes_checkpoint_migration(nodes, tmp_path):
    n1, n2 = nodes
    r1, r2 = str(tmp_path / "rsc-n1"), str(tmp_path / "rsc-n2")
    dumpdir = tmp_path / "dump"
    dumpdir.mkdir()
    meta = {"migrate_source": "n1", "migrate_target": "n2"}
    rc, err, _ = node_agent(n1, "start", CT_MIG, r1, dumpdir=str(dumpdir))
    assert rc == 0, err
    before = None
    while before is None or before < 5:                # far enough that a restarted workload (1, 2..) shows
        before = lxc_ve.next_counter(CT_MIG, before)
        assert before is not None, "the workload never advanced"
    rc, err, _ = node_agent(n1, "migrate_to", CT_MIG, r1, meta=meta, dumpdir=str(dumpdir))
    if not _criu_ok():
        # no working CRIU here: migrate_to fails with the reason and the source keeps running
        assert rc == 1, err
        assert "CRIU" in err
        assert lxc_ve.state(CT_MIG, node=n1) == "RUNNING"
        assert node_agent(n1, "monitor", CT_MIG, r1, interval=10000)[0] == 0
    else:
        assert rc == 0, err
        rc, err, _ = node_agent(n2, "migrate_from", CT_MIG, r2, meta=meta, dumpdir=str(dumpdir))
        assert rc == 0, err
        assert lxc_ve.state(CT_MIG, node=n2) == "RUNNING"
        after = lxc_ve.next_counter(CT_MIG, lxc_ve.counter(CT_MIG))
        assert after is not None and after > before, (before, after)   # memory state moved, not a reboot
        assert list(dumpdir.iterdir()) == []
        assert node_agent(n1, "stop", CT_MIG, r1)[0] == 0
        r1 = r2
        n1 = n2
    rc, err, _ = node_agent(n1, "stop", CT_MIG, r1)
    assert rc == 0, err


def test_two_nodes_checkpoint_flow_with_criu_double(nodes, tmp_path):
    """The agent's checkpoint path end to end (CRIU >= 4.1 replaced by lab/rigs/lxc_ve_fakecriu.py)."""
    n1, n2 = nodes
    fake = lxc_ve_fakecriu.install()
    lxc_ve_fakecriu.CALLS.unlink(missing_ok=True)
    env = {"PATH": fake + ":/usr/sbin:/usr/bin:/sbin:/bin"}
    r1, r2 = str(tmp_path / "rsc-n1"), str(tmp_path / "rsc-n2")
    dumpdir = tmp_path / "dump"
    dumpdir.mkdir()
    images = dumpdir / ("ve-%s.dump" % CT_MIG)
    meta = {"migrate_source": "n1", "migrate_target": "n2"}
    kw = dict(env=env, dumpdir=str(dumpdir))
    assert node_agent(n1, "validate-all", CT_MIG, r1, **kw)[0] == 0
    rc, err, _ = node_agent(n1, "start", CT_MIG, r1, **kw)
    assert rc == 0, err
    rc, err, _ = node_agent(n1, "migrate_to", CT_MIG, r1, meta=meta, **kw)
    assert rc == 0, err
    assert (images / "inventory.img").exists()
    assert lxc_ve.state(CT_MIG, node=n1) == "STOPPED"
    rc, err, dt = node_agent(n2, "migrate_from", CT_MIG, r2, meta=meta, **kw)
    assert rc == 0, err
    assert dt < 5, "the restore's left-behind process must not hold the agent (stderr not captured)"
    assert lxc_ve.state(CT_MIG, node=n2) == "RUNNING"
    assert not images.exists()                                   # no dump left behind
    assert node_agent(n1, "stop", CT_MIG, r1, **kw)[0] == 0
    assert node_agent(n1, "monitor", CT_MIG, r1, interval=10000, **kw)[0] == 7
    assert node_agent(n2, "monitor", CT_MIG, r2, interval=10000, **kw)[0] == 0

    # back to n1, but the restore fails there: the dump stays, recovery restores on n2 (the source)
    back = {"migrate_source": "n2", "migrate_target": "n1"}
    rc, err, _ = node_agent(n2, "migrate_to", CT_MIG, r2, meta=back, **kw)
    assert rc == 0, err
    (images / "FAIL").touch()
    rc, err, _ = node_agent(n1, "migrate_from", CT_MIG, r1, meta=back, **kw)
    assert rc == 1 and "restore failed" in err, err
    assert (images / "inventory.img").exists()
    assert lxc_ve.state(CT_MIG, node=n1) == "STOPPED"
    (images / "FAIL").unlink()                                    # the target's problem, not the images'
    assert node_agent(n1, "stop", CT_MIG, r1, **kw)[0] == 0
    assert node_agent(n2, "stop", CT_MIG, r2, **kw)[0] == 0
    rc, err, _ = node_agent(n2, "start", CT_MIG, r2, **kw)
    assert rc == 0, err
    assert lxc_ve.state(CT_MIG, node=n2) == "RUNNING"
    assert not images.exists()
    restores = [c for c in lxc_ve_fakecriu.calls() if c.startswith("restore")]
    assert len(restores) == 3                                     # n2 ok, n1 failed, n2 recovery
    rc, err, _ = node_agent(n2, "stop", CT_MIG, r2, **kw)
    assert rc == 0, err
