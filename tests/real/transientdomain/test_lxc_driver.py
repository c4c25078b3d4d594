"""TransientDomain on libvirt's LXC driver (lxc:///system): busybox containers on a private libvirtd.

The node (lab.rigs.libvirt_lxc) is a systemd-less libvirtd with the LXC driver in its own mount and UTS
namespace; the agent runs inside them with hypervisor=lxc:///system, as on a cluster node. Containers are
created from a domain XML (<domain type='lxc'>, <os><type>exe</type><init>/sbin/init</init></os>, a
<filesystem type='mount'> root of busybox-static), each with a root of its own. Nothing here waits for a
fixed time: every wait is for a condition, bounded by a generous limit, so a loaded machine only makes the
tests slower, never wrong.
"""

import itertools
import os
import shutil
import signal
import subprocess
import time
import uuid as uuidlib

import pytest

import harness
from lab.rigs import libvirt_lxc as X

pytestmark = [pytest.mark.root, pytest.mark.lxc]

AGENT = "TransientDomain"
HV = "lxc:///system"
_seq = itertools.count(1)


@pytest.fixture(scope="module")
def lxnode():
    n = X.LxcNode("td-lx%d" % os.getpid())  # a node per session: two sessions never share a libvirtd
    n.start()
    yield n
    n.stop()


class Containers:
    def __init__(self, node):
        self.node = node
        self.dir = X.WORK / "xml"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.made = []

    def make(self, init="busybox"):
        name = "tdlx%d-%d" % (os.getpid() % 10000, next(_seq))
        root = X.make_root(X.WORK / "roots" / name, init=init)
        dom_uuid = str(uuidlib.uuid4())
        path = self.dir / (name + ".xml")
        path.write_text(X.container_xml(name, root, dom_uuid))
        self.made.append({"name": name, "root": root, "config": str(path)})
        return {"name": name, "uuid": dom_uuid, "config": str(path), "root": root,
                "params": {"config": str(path), "hypervisor": HV}}

    def run(self, action, params, rsctmp, timeout_ms=30000, interval=None, meta=None, check_level=None):
        environ = harness.agent_env(harness.agent_path(AGENT), params, interval=interval, timeout_ms=timeout_ms,
                                    rsctmp=rsctmp, instance="td-lxc", meta=meta, check_level=check_level)
        argv = self.node.ns_prefix() + [harness.agent_path(AGENT), action]
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, process_group=0)
        killed = False
        try:
            out, err = proc.communicate(timeout=timeout_ms / 1000.0 + 5)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return harness.AgentRun(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                                time.monotonic() - started, killed)

    def running(self, c):
        st = self.node.state(c["name"])
        return st is not None and st[0] == 1

    def gone(self, c):
        st = self.node.state(c["name"])
        return (st is None or st[0] == 5) and not X.controller_pids(c["name"])


@pytest.fixture
def cts(lxnode):
    made = Containers(lxnode)
    yield made
    for c in made.made:
        lxnode.destroy(c["name"])
        X.kill_container(c["name"])
        shutil.rmtree(c["root"], ignore_errors=True)
        if os.path.isfile(c["config"]):
            os.unlink(c["config"])


@pytest.fixture
def rsc(tmp_path):
    p = tmp_path / "rsctmp"
    p.mkdir()
    return str(p)


def test_lxc_start_monitor_stop_gracefully(lxnode, cts, rsc):
    c = cts.make()
    p = c["params"]
    assert cts.run("validate-all", p, rsc).rc == 0
    assert cts.run("monitor", p, rsc).rc == 7                                   # probe before start
    r = cts.run("start", p, rsc)
    assert r.rc == 0, r
    assert cts.running(c)
    assert X.wait_for(lambda: X.booted(c["root"]), 20)                         # busybox init ran rcS
    assert lxnode.conn().lookupByName(c["name"]).isPersistent() == 0           # transient, never defined
    assert cts.run("monitor", p, rsc, interval=10000).rc == 0
    assert cts.run("monitor", p, rsc, interval=60000, check_level=10).rc == 0
    assert cts.run("monitor", p, rsc).rc == 0                                   # probe
    r = cts.run("stop", p, rsc)
    assert r.rc == 0, r
    assert "destroyed" not in r.stderr, r                                       # it shut down by itself
    assert (c["root"] / "run" / "shutdown").exists()                           # init ran its shutdown action
    assert cts.gone(c)
    assert cts.run("monitor", p, rsc, interval=10000).rc == 7                   # clean stop => 7
    assert cts.run("stop", p, rsc).rc == 0                                      # stop again: nothing to do


@pytest.mark.parametrize("init", ["deaf", "rebooter"])
def test_lxc_container_not_powering_off_is_destroyed_before_the_deadline(lxnode, cts, rsc, init):
    # deaf: PID 1 ignores SIGTERM; rebooter: busybox init reboots on SIGTERM and libvirt-LXC restarts the
    # container (it does not apply on_reboot=destroy), so it never goes away by itself either
    c = cts.make(init=init)
    p = c["params"]
    assert cts.run("start", p, rsc).rc == 0
    assert X.wait_for(lambda: X.booted(c["root"]), 20)
    # libvirt-LXC's destroy itself takes ~2 s for a container that ignores SIGTERM (it signals the cgroup's
    # tasks with SIGTERM, then SIGKILL after 1.6 s): 20 s leave it time after the graceful wait (60 %)
    r = cts.run("stop", p, rsc, timeout_ms=20000)
    assert r.rc == 0, r
    assert not r.killed and 8.0 < r.elapsed < 20.0, r                          # waited for it, then destroyed
    assert "did not shut down" in r.stderr and "destroying it" in r.stderr, r
    assert cts.gone(c)
    if init == "rebooter":
        assert (c["root"] / "run" / "booted").read_text().count("booted") >= 2, "it rebooted"
    assert cts.run("monitor", p, rsc, interval=10000).rc == 7


def test_lxc_force_stop_destroys_at_once(lxnode, cts, rsc):
    c = cts.make(init="deaf")
    p = dict(c["params"], force_stop="true")
    assert cts.run("start", p, rsc).rc == 0
    r = cts.run("stop", p, rsc)
    assert r.rc == 0 and r.elapsed < 10.0, r                                   # no graceful wait (18 s here)
    assert "did not shut down" not in r.stderr, r
    assert cts.gone(c)


def test_lxc_init_killed_means_monitor_failed(lxnode, cts, rsc):
    c = cts.make()
    p = c["params"]
    assert cts.run("start", p, rsc).rc == 0
    assert X.wait_for(lambda: X.init_pid(c["name"]) is not None, 20)
    os.kill(X.init_pid(c["name"]), signal.SIGKILL)                             # the container crashes
    assert X.wait_for(lambda: cts.gone(c), 20)
    r = cts.run("monitor", p, rsc, interval=10000)
    assert r.rc == 1, r                                                         # a crash, not a clean stop
    assert "failed" in r.exit_reason, r
    assert cts.run("monitor", p, rsc).rc == 7                                   # a probe says "not running"
    assert cts.run("stop", p, rsc).rc == 0
    assert cts.run("monitor", p, rsc, interval=10000).rc == 7                   # forgotten after the stop


@pytest.mark.parametrize("how", ["removed", "unreadable"])
def test_lxc_config_gone_while_running_identity_from_the_record(lxnode, cts, rsc, how):
    c = cts.make()
    p = c["params"]
    assert cts.run("start", p, rsc).rc == 0
    if how == "removed":
        os.unlink(c["config"])
    else:
        # a directory where the file was: open() fails as it would for an unreadable file (root reads any mode)
        os.unlink(c["config"])
        os.mkdir(c["config"])
    try:
        r = cts.run("monitor", p, rsc)                                          # probe: the record knows it
        assert r.rc == 0, r
        assert cts.run("monitor", p, rsc, interval=10000).rc == 0
        r = cts.run("stop", p, rsc)
        assert r.rc == 0, r
        assert cts.gone(c)
        assert cts.run("monitor", p, rsc).rc == 7
    finally:
        if os.path.isdir(c["config"]):
            os.rmdir(c["config"])


def test_lxc_migrate_to_is_refused_and_the_container_keeps_running(lxnode, cts, rsc):
    c = cts.make()
    p = c["params"]
    assert cts.run("start", p, rsc).rc == 0
    r = cts.run("migrate_to", p, rsc, meta={"migrate_source": lxnode.name, "migrate_target": "td-lx-other"})
    assert r.rc == 1, r
    assert "libvirt-LXC cannot migrate" in r.exit_reason and "keeps running" in r.exit_reason, r
    assert r.elapsed < 5.0, r
    assert cts.running(c)
    assert cts.run("monitor", p, rsc, interval=10000).rc == 0
    # the same refusal from the URI alone, when this node cannot read the XML
    os.unlink(c["config"])
    r = cts.run("migrate_to", p, rsc, meta={"migrate_source": lxnode.name, "migrate_target": "td-lx-other"})
    assert r.rc == 1 and "libvirt-LXC cannot migrate" in r.exit_reason, r
    assert cts.run("stop", p, rsc).rc == 0
    assert cts.gone(c)


def test_lxc_startup_signal_auto_is_off_and_on_is_refused(lxnode, cts, rsc):
    c = cts.make()
    p = c["params"]
    r = cts.run("validate-all", dict(p, startup_signal="on"), rsc)
    assert r.rc == 6 and "startup_signal" in r.exit_reason and "libvirt-LXC" in r.exit_reason, r
    r = cts.run("start", dict(p, startup_signal="on"), rsc)
    assert r.rc == 6 and "libvirt-LXC" in r.exit_reason, r
    assert lxnode.state(c["name"]) is None                                      # refused before creating it
    r = cts.run("start", dict(p, startup_signal="auto"), rsc)
    assert r.rc == 0 and r.elapsed < 10.0, r                                   # auto: nothing to wait for
    assert cts.run("monitor", p, rsc, interval=60000, check_level=10).rc == 0  # no channel to ping
    assert cts.run("stop", dict(p, force_stop="true"), rsc).rc == 0


def test_lxc_monitor_scripts_are_the_readiness_gate(lxnode, cts, rsc, tmp_path):
    c = cts.make()
    flag = tmp_path / "ok"
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\ntest -e %s\n" % flag)
    script.chmod(0o755)
    gate = dict(c["params"], monitor_scripts=str(script), startup_timeout="2s")
    r = cts.run("start", gate, rsc)
    assert r.rc == 1 and "monitor script" in r.exit_reason, r
    assert X.wait_for(lambda: cts.gone(c), 10)                                # a failed start leaves nothing
    # the script passes only once the flag appears: start waits for it (a helper makes it 2 s later)
    p = dict(c["params"], monitor_scripts=str(script))
    maker = subprocess.Popen(["/bin/sh", "-c", "sleep 2; touch %s" % flag])
    try:
        r = cts.run("start", p, rsc)
    finally:
        maker.wait()
    assert r.rc == 0, r
    assert r.elapsed >= 1.5, r                                                  # it did wait for the script
    assert cts.run("monitor", p, rsc, interval=60000, check_level=10).rc == 0
    flag.unlink()
    assert cts.run("monitor", p, rsc, interval=60000, check_level=10).rc == 1
    assert cts.run("monitor", p, rsc, interval=10000).rc == 0                   # depth 0 does not run scripts
    assert cts.run("stop", p, rsc).rc == 0
    assert cts.gone(c)


def test_lxc_libvirtd_down_monitor_degraded_and_stop_kills_the_container(lxnode, cts, rsc):
    c = cts.make()
    p = c["params"]
    assert cts.run("start", p, rsc).rc == 0
    assert X.wait_for(lambda: X.init_pid(c["name"]) is not None, 20)
    init = X.init_pid(c["name"])
    lxnode.stop_daemon()
    try:
        assert X.controller_pids(c["name"]) and X.L._alive(init)              # the container outlives libvirtd
        r = cts.run("monitor", p, rsc, interval=10000, timeout_ms=10000)
        assert r.rc == 190 and "libvirtd" in r.exit_reason, r                  # running, but unmanageable
        r = cts.run("monitor", p, rsc, timeout_ms=10000)                        # probe: it runs => 0
        assert r.rc == 0, r
        r = cts.run("stop", p, rsc, timeout_ms=10000)
        assert r.rc == 0 and not r.killed and r.elapsed < 10.0, r
        assert not X.L._alive(init)                                             # the container's init is gone
        assert X.wait_for(lambda: not X.controller_pids(c["name"]), 10)        # and its controller with it
        assert cts.run("monitor", p, rsc, interval=10000, timeout_ms=10000).rc == 7
    finally:
        lxnode.start()
    st = lxnode.state(c["name"])
    assert st is None or st[0] == 5, st                                         # libvirtd sees it shut off
    assert cts.run("monitor", p, rsc, interval=10000).rc == 7
