"""ManageVE (runtime=lxc) under the 3-node cluster: a busybox LXC container whose rootfs lives on the shared
storage. It starts on one node only (the other nodes' LXC, in their own network namespaces, see it STOPPED),
moves with `crm_resource --move` (migration=restart: migrate_to on the source, migrate_from on the target),
and when its node is SIGKILLed it is fenced (the container's processes die with the node) and the container
is restarted on a survivor exactly once; after the node rejoins it still runs once.
"""
import os
import shutil

import pytest

from lab import REPO
from lab import clusterops as co
from lab import pyralab

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.lxc, pytest.mark.slow]

AGENT = os.path.join(REPO, "agents", "ManageVE")
CT = "pyra-ve-pcmk-c1"  # the LXC rig (lab/rigs/lxc_ve.py) insists on its pyra-ve- prefix
LXCPATH = f"{pyralab.SHARED}/lxc"

if not os.path.exists(AGENT):
    pytest.skip("agents/ManageVE does not exist yet", allow_module_level=True)

from lab.rigs import lxc_ve  # noqa: E402  (busybox container builder of the ManageVE tests)


def container_monitors():
    """PIDs of the container's lxc monitor on this machine, whatever node started it."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if f.read().startswith(f"[lxc monitor] {LXCPATH} {CT}".encode()):
                        out.append(int(name))
            except OSError:
                continue
    return out


def state_on(lab, node):
    res = lab.exec(node, ["lxc-info", "-P", LXCPATH, "-n", CT, "-sH"], timeout=20)
    return res.stdout.strip() if res.returncode == 0 else f"rc={res.returncode}"


@pytest.fixture(scope="module")
def container(lab):
    conf = lxc_ve.make_container(CT, lxcpath=f"{pyralab.STORAGE}/lxc")
    with open(conf, encoding="utf-8") as f:
        text = f.read()
    with open(conf, "w", encoding="utf-8") as f:  # the nodes see the storage at SHARED
        f.write(text.replace(pyralab.STORAGE, pyralab.SHARED))
    yield CT
    shutil.rmtree(f"{pyralab.STORAGE}/lxc/{CT}", ignore_errors=True)


def test_container_start_move_failover_and_rejoin(cluster, container):
    try:
        t = co.Timer()
        co.crm(cluster, "configure", "primitive", "ct1", "ocf:pyra:ManageVE",
               "params", f"veid={container}", "runtime=lxc", f"lxc_path={LXCPATH}", "migration=restart",
               "op", "monitor", "interval=10s", "timeout=30s", "meta", "allow-migrate=true")
        src = co.wait_where(cluster, "ct1", lambda w: len(w) == 1, 60)[0]
        cluster.settle(60)
        co.record("ManageVE (LXC) start (crm configure primitive + settle)", t(),
                  agent="ManageVE (LXC)", kind="start")
        assert {n: state_on(cluster, n) for n in cluster.nodes} == {
            n: ("RUNNING" if n == src else "STOPPED") for n in cluster.nodes}
        assert len(container_monitors()) == 1

        dst = next(n for n in cluster.nodes if n != src)
        t = co.Timer()
        co.sh(cluster, ["crm_resource", "--move", "-r", "ct1", "-N", dst])
        co.wait_where(cluster, "ct1", lambda w: w == [dst], 90)
        cluster.settle(90)
        co.record("ManageVE (LXC) move, migration=restart (crm_resource --move)", t(),
                  agent="ManageVE (LXC)", kind="migrate")
        seq = [(o.op, o.node, o.rc) for o in co.ops(cluster, "ct1") if o.op not in ("monitor", "probe")]
        assert seq == [("start", src, 0), ("migrate_to", src, 0), ("migrate_from", dst, 0), ("stop", src, 0)], seq
        assert state_on(cluster, dst) == "RUNNING" and state_on(cluster, src) == "STOPPED"
        co.sh(cluster, ["crm_resource", "--clear", "-r", "ct1"])

        victim = dst
        before = len(co.ops(cluster, "ct1"))
        t = co.Timer()
        cluster.kill_node(victim)
        now = co.wait_where(cluster, "ct1", lambda w: len(w) == 1 and w[0] != victim, 120, exclude=(victim,))
        cluster.settle(90, viewer=now[0])
        co.record("ManageVE (LXC) failover after SIGKILL of its node (fence + start)", t(),
                  agent="ManageVE (LXC)", kind="failover")
        assert any(f"plug={victim} off done" in c for c in cluster.fence_calls())
        assert state_on(cluster, now[0]) == "RUNNING"
        assert len(container_monitors()) == 1

        cluster.start_node(victim)
        cluster.settle(90)
        assert cluster.where("ct1") == now
        after = co.ops(cluster, "ct1")[before:]
        assert [(o.node, o.rc) for o in after if o.op == "start"] == [(now[0], 0)], after
        probes = [o for o in after if o.op == "probe" and o.node == victim]
        assert probes and probes[-1].rc == 7, after
        assert len(container_monitors()) == 1
        assert co.failed_actions(cluster) == []
    finally:
        co.remove(cluster, "ct1")
    assert container_monitors() == []
