"""Fixtures for TransientDomain's real tests: the guest images, one libvirt node, two nodes for migration.

Nodes are module-scoped (libvirtd starts in ~0.2 s with a warm capability cache, guests boot in ~2-4 s under
software emulation), each test creates its own guest with a unique name. Agents run "on" a node: inside its
mount/UTS (and network) namespaces, where qemu:///system is that node's libvirtd, as on a real cluster node.
"""

import itertools
import os
import time
import uuid as uuidlib
from pathlib import Path

import pytest

import harness
from lab.rigs import libvirt_node as L
from lab.rigs.guest import build

AGENT = "TransientDomain"
_seq = itertools.count(1)


@pytest.fixture(scope="session")
def images():
    yield build.build()
    L.release_run_dir()  # the nodes (module-scoped) are gone by now: leave no mount behind


class Guests:
    """Writes guest XML files and runs the agent on a node."""

    def __init__(self, images, tmp: Path):
        self.images = images
        self.dir = L.WORK / "xml"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.created = []

    def xml(self, prefix="tdg", **kw):
        name = "%s%d-%d" % (prefix, os.getpid() % 10000, next(_seq))
        dom_uuid = str(uuidlib.uuid4())
        path = self.dir / (name + ".xml")
        console = L.WORK / "console" / (name + ".log")
        console.parent.mkdir(parents=True, exist_ok=True)
        console.unlink(missing_ok=True)
        path.write_text(L.guest_xml(name, self.images, dom_uuid, console=str(console), **kw))
        self.created.append(name)
        return {"name": name, "uuid": dom_uuid, "config": str(path), "console": console}

    def run(self, node, action, params, rsctmp, timeout_ms=30000, interval=None, meta=None, env=None,
            instance="td-guest", check_level=None, ns=True):
        environ = harness.agent_env(harness.agent_path(AGENT), params, interval=interval, timeout_ms=timeout_ms,
                                    rsctmp=rsctmp, instance=instance, env=env, meta=meta,
                                    check_level=check_level)
        import subprocess
        argv = (node.ns_prefix() if ns else []) + [harness.agent_path(AGENT), action]
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, process_group=0)
        killed = False
        try:
            out, err = proc.communicate(timeout=timeout_ms / 1000.0 + 5)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
        return harness.AgentRun(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                                time.monotonic() - started, killed)


@pytest.fixture
def guests(images, tmp_path):
    return Guests(images, tmp_path)


def _rsctmp(tmp_path, tag):
    p = tmp_path / ("rsctmp-" + tag)
    p.mkdir(exist_ok=True)
    return str(p)


@pytest.fixture
def rsctmp1(tmp_path):
    return _rsctmp(tmp_path, "n1")


@pytest.fixture
def rsctmp2(tmp_path):
    return _rsctmp(tmp_path, "n2")


@pytest.fixture(scope="module")
def node():
    n = L.Node("td-n0")
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def pair():
    L.netns_up()
    hosts = {"td-n1": L.NETNS["td-n1"][0], "td-n2": L.NETNS["td-n2"][0]}
    n1 = L.Node("td-n1", netns="td-n1", addr=hosts["td-n1"], hosts=hosts)
    n2 = L.Node("td-n2", netns="td-n2", addr=hosts["td-n2"], hosts=hosts)
    try:
        n1.start()
        n2.start()
        yield n1, n2
    finally:
        n1.stop()
        n2.stop()
        L.netns_down()


@pytest.fixture(scope="module")
def ovs_pair(pair):
    """``pair`` with Open vSwitch on each node (userspace datapath, bridge vh), see lab/rigs/ovs.py."""
    from lab.rigs import ovs as O
    switches = [O.NodeOVS(n) for n in pair]
    try:
        for s in switches:
            s.start(bridges=("vh",))
        yield pair, switches
    finally:
        for s in switches:
            s.stop()
        O.release_rundir()


@pytest.fixture(scope="module")
def storage(pair):
    """``pair`` plus the storage namespace td-stor that both nodes reach (lab/rigs/nbd.py)."""
    from lab.rigs import nbd as N
    N.storage_up()
    try:
        yield pair
    finally:
        N.storage_down()


@pytest.fixture
def disk_guests(images, tmp_path):
    """Guests booting the rig's guest with virtio_blk and the "disk" channel command (lab/rigs/nbd.py)."""
    from lab.rigs import nbd as N
    return Guests(N.disk_images(images), tmp_path)
