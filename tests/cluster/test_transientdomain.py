"""Scenario 2: a TransientDomain guest (real QEMU, software emulation) under the 3-node cluster.

Each node runs its own libvirtd (pyralab enable_libvirt); the guest's XML lives on the shared storage. The
guest is started, live-migrated by `crm_resource --move` (migrate_to on the source, migrate_from on the
target, no stop/start: Pacemaker's own log says so) and answers on its channel after the move; then the node
running it is SIGKILLed: it is fenced, the guest is restarted on a survivor exactly once, and when the node
rejoins nothing runs twice.
"""
import os

import pytest

from lab import REPO
from lab import clusterops as co
from lab import pyralab

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.slow]

AGENT = os.path.join(REPO, "agents", "TransientDomain")
GUEST = "pyra-pcmk-g1"

if not os.path.exists(AGENT):
    pytest.skip("agents/TransientDomain does not exist yet", allow_module_level=True)

from lab.rigs import libvirt_node  # noqa: E402  (guest XML and channel helpers of the TransientDomain rig)
from lab.rigs.guest import build  # noqa: E402


@pytest.fixture(scope="module")
def guest_config(lab):
    images = build.build()
    lab.enable_libvirt()
    path = f"{pyralab.STORAGE}/{GUEST}.xml"
    with open(path, "w", encoding="utf-8") as f:
        f.write(libvirt_node.guest_xml(GUEST, images, console=f"{pyralab.SHARED}/{GUEST}.console"))
    yield f"{pyralab.SHARED}/{GUEST}.xml"
    os.unlink(path)


def test_guest_start_live_migration_failover_and_rejoin(cluster, guest_config):
    try:
        t = co.Timer()
        co.crm(cluster, "configure", "primitive", "vm1", "ocf:pyra:TransientDomain",
               "params", f"config={guest_config}", "op", "monitor", "interval=10s", "timeout=30s",
               "meta", "allow-migrate=true")
        src = co.wait_where(cluster, "vm1", lambda w: len(w) == 1, 60)[0]
        cluster.settle(60)
        co.record("TransientDomain start (crm configure primitive + settle, guest acked)", t(),
                  agent="TransientDomain", kind="start")
        assert co.guest_answers(cluster, src, GUEST, "start")
        assert len(co.qemu_of(GUEST)) == 1

        # live migration
        dst = next(n for n in cluster.nodes if n != src)
        t = co.Timer()
        co.sh(cluster, ["crm_resource", "--move", "-r", "vm1", "-N", dst])
        co.wait_where(cluster, "vm1", lambda w: w == [dst], 90)
        cluster.settle(90)
        co.record("TransientDomain live migration (crm_resource --move)", t(),
                  agent="TransientDomain", kind="migrate")
        seq = [(o.op, o.node, o.rc) for o in co.ops(cluster, "vm1") if o.op not in ("monitor", "probe")]
        assert seq == [("start", src, 0), ("migrate_to", src, 0), ("migrate_from", dst, 0), ("stop", src, 0)], seq
        assert co.guest_answers(cluster, dst, GUEST, "moved")
        assert len(co.qemu_of(GUEST)) == 1
        co.sh(cluster, ["crm_resource", "--clear", "-r", "vm1"])

        # power cut of the node running the guest
        victim = dst
        before = len(co.ops(cluster, "vm1"))
        t = co.Timer()
        cluster.kill_node(victim)
        now = co.wait_where(cluster, "vm1", lambda w: len(w) == 1 and w[0] != victim, 120, exclude=(victim,))
        cluster.settle(90, viewer=now[0])
        co.record("TransientDomain failover after SIGKILL of its node (fence + cold start)", t(),
                  agent="TransientDomain", kind="failover")
        assert any(f"plug={victim} off done" in c for c in cluster.fence_calls())
        assert co.guest_answers(cluster, now[0], GUEST, "failover")
        assert len(co.qemu_of(GUEST)) == 1

        # the node comes back: nothing runs twice
        cluster.start_node(victim)
        cluster.settle(90)
        assert cluster.where("vm1") == now
        after = co.ops(cluster, "vm1")[before:]
        starts = [o for o in after if o.op == "start"]
        assert [(o.node, o.rc) for o in starts] == [(now[0], 0)], after
        probes = [o for o in after if o.op == "probe" and o.node == victim]
        assert probes and probes[-1].rc == 7, after
        assert len(co.qemu_of(GUEST)) == 1
        assert co.failed_actions(cluster) == []
    finally:
        co.remove(cluster, "vm1")
    assert co.qemu_of(GUEST) == []
