"""Scenario 4: utilization-based placement of TransientDomain guests.

Nodes get a `memory` capacity (n1 and n2 room for two small guests, n3 for none) and `cpu`; the cluster uses
placement-strategy=utilization. Each guest's utilization comes from its XML: TransientDomain publishes
memory (MiB) and cpu (vCPUs) on its first probe and when it starts (autoset_utilization_*). Three small guests end up on n1/n2 only,
no node over its capacity; a guest whose XML asks more memory than any node has stays stopped, and the admin
can see why (crm_simulate's utilization view and the scheduler's log). Because the probes that precede the
first start already publish the size, the big guest is never started at all (publishing it only on start,
as VirtualDomain does, let it run once before being stopped "due to node availability").
"""
import os
import xml.etree.ElementTree as ET

import pytest

from lab import REPO
from lab import clusterops as co
from lab import pyralab

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.slow]

if not os.path.exists(os.path.join(REPO, "agents", "TransientDomain")):
    pytest.skip("agents/TransientDomain does not exist yet", allow_module_level=True)

from lab.rigs import libvirt_node  # noqa: E402
from lab.rigs.guest import build  # noqa: E402

CAPACITY = {"n1": 300, "n2": 300, "n3": 100}  # MiB
SMALL = {"u1": 128, "u2": 128, "u3": 128}
BIG = ("ubig", 512)
ALL = dict(SMALL, **{BIG[0]: BIG[1]})


def guest(rsc):
    return f"pyra-pcmk-{rsc}"


@pytest.fixture(scope="module")
def configs(lab):
    images = build.build()
    lab.enable_libvirt()
    paths = {}
    for rsc, mib in ALL.items():
        with open(f"{pyralab.STORAGE}/{guest(rsc)}.xml", "w", encoding="utf-8") as f:
            f.write(libvirt_node.guest_xml(guest(rsc), images, memory_mib=mib,
                                           console=f"{pyralab.SHARED}/{guest(rsc)}.console"))
        paths[rsc] = f"{pyralab.SHARED}/{guest(rsc)}.xml"
    yield paths
    for rsc in ALL:
        for ext in ("xml", "console"):
            try:
                os.unlink(f"{pyralab.STORAGE}/{guest(rsc)}.{ext}")
            except OSError:
                pass


def utilization(lab):
    """({node: {attr: capacity}}, {rsc: {attr: value}}) from the CIB."""
    root = ET.fromstring(co.sh(lab, ["cibadmin", "-Q"]).stdout)
    nodes = {n.get("uname"): {nv.get("name"): int(nv.get("value")) for u in n.iter("utilization")
                              for nv in u.iter("nvpair")} for n in root.iter("node") if n.get("uname")}
    rscs = {p.get("id"): {nv.get("name"): int(nv.get("value")) for u in p.findall("utilization")
                          for nv in u.iter("nvpair")} for p in root.iter("primitive")}
    return nodes, rscs


def test_guests_placed_by_memory_and_too_big_guest_stays_stopped(cluster, configs):
    try:
        for node, mib in CAPACITY.items():
            for name, value in (("memory", mib), ("cpu", 4)):
                co.sh(cluster, ["crm_attribute", "-N", node, "-z", "-n", name, "-v", str(value)])
        co.sh(cluster, ["crm_attribute", "-t", "crm_config", "-n", "placement-strategy", "-v", "utilization"])
        t = co.Timer()
        for rsc in ALL:
            co.sh(cluster, ["crm", "configure", "primitive", rsc, "ocf:pyra:TransientDomain",
                            "params", f"config={configs[rsc]}", "op", "monitor", "interval=10s", "timeout=30s",
                            "op", "start", "timeout=90s", "op", "stop", "timeout=90s"])
        pyralab.wait_for(lambda: utilization(cluster)[1].get(BIG[0], {}).get("memory") and all(
            len(cluster.where(r)) == 1 for r in SMALL) and not cluster.where(BIG[0]), 300, 1,
            what="small guests placed, big guest stopped")
        cluster.settle(240)
        co.record("3 small guests placed by utilization, big one refused (settled)", t(),
                  agent="TransientDomain", kind="placement by utilization")
        nodes, rscs = utilization(cluster)
        for rsc, mib in ALL.items():  # the agent published what the XML says
            assert rscs.get(rsc) == {"memory": mib, "cpu": 1}, rscs
        where = {r: cluster.where(r) for r in ALL}
        assert where[BIG[0]] == [], where
        used = {n: 0 for n in CAPACITY}
        for r in SMALL:
            assert len(where[r]) == 1, where
            used[where[r][0]] += SMALL[r]
        assert all(used[n] <= CAPACITY[n] for n in CAPACITY), (used, where)
        assert used["n3"] == 0, where
        for r in ALL:
            assert len(co.qemu_of(guest(r))) == (0 if r == BIG[0] else 1), r

        # the admin sees why: crm_mon says Stopped, crm_simulate shows what is left on each node, and the
        # scheduler logs that the guest cannot run anywhere
        assert f"{BIG[0]}\t(ocf:pyra:TransientDomain):\t Stopped" in co.sh(cluster, ["crm_mon", "-1", "-r"]).stdout
        sim = co.sh(cluster, ["crm_simulate", "-L", "-U", "-s"]).stdout
        left = {}
        for line in sim.splitlines():
            # Pacemaker 2.1: "Remaining: n1 capacity: cpu=2 memory=384"; 3.0: "  * Remaining: n1 capacity: ..."
            words = line.split()
            if "Remaining:" in words[:2] and "capacity:" in words:
                at = words.index("Remaining:")
                fields = dict(f.split("=") for f in words[words.index("capacity:") + 1:])
                left[words[at + 1]] = int(fields["memory"])
        assert set(left) == set(CAPACITY) and max(left.values()) < BIG[1], sim
        logs = "".join(cluster.pacemaker_log(n) for n in cluster.nodes)
        assert f"Resource {BIG[0]} cannot run anywhere" in logs
        # its size was published by the probes before any start: it never ran, not even once
        big = [(o.op, o.rc) for o in co.ops(cluster, BIG[0]) if o.op not in ("probe", "monitor")]
        assert big == [], big
        assert co.failed_actions(cluster) == []
    finally:
        co.remove(cluster, *ALL)
        co.sh(cluster, ["crm_attribute", "-t", "crm_config", "-n", "placement-strategy", "-D"], check=False)
        for node in CAPACITY:
            for name in ("memory", "cpu"):
                co.sh(cluster, ["crm_attribute", "-N", node, "-z", "-n", name, "-D"], check=False)
    for r in ALL:
        assert len(co.qemu_of(guest(r))) == 0
