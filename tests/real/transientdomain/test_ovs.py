"""Open vSwitch interfaces as the NIIF seed used them, for real: a guest on the OVS bridge ``vh`` with VLAN 150.

Each rig node (td-n1, td-n2) runs its own ovsdb-server and ovs-vswitchd inside its namespaces, userspace
datapath (lab/rigs/ovs.py). libvirt plugs the guest's tap into ``vh`` (ovs-vsctl add-port ... tag=150) on start
and on the migration target, and unplugs it on the source once the guest has left: the tests read the ports
with ovs-vsctl on each node.
"""

import time
import xml.etree.ElementTree as ET

import pytest

from lab.rigs import libvirt_node as L
from lab.rigs import ovs as O

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.netns]

META_12 = {"migrate_source": "td-n1", "migrate_target": "td-n2"}
META_21 = {"migrate_source": "td-n2", "migrate_target": "td-n1"}


def live_port(node, name):
    """(tap name, MAC) of the guest's interface, from its live XML on ``node``."""
    iface = ET.fromstring(node.xml_desc(name)).find("devices/interface")
    return iface.find("target").get("dev"), iface.find("mac").get("address")


def assert_plugged(node, switch, g):
    tap, mac = live_port(node, g["name"])
    assert switch.ports("vh") == [tap]
    assert switch.port_tag(tap) == "150"
    assert switch.vsctl("get", "interface", tap, "external_ids:attached-mac").strip('"') == mac
    assert switch.vsctl("get", "interface", tap, "external_ids:vm-id").strip('"') == g["uuid"]
    return tap


def test_ovs_guest_starts_and_migrates_with_its_port_replugged(ovs_pair, guests, rsctmp1, rsctmp2):
    (n1, n2), (s1, s2) = ovs_pair
    g = guests.xml(prefix="tdovs", devices=O.interface_xml("vh", vlan=150))
    p = {"config": g["config"]}
    assert s1.ports("vh") == [] and s2.ports("vh") == []
    r = guests.run(n1, "validate-all", p, rsctmp1, check_level=10)
    assert r.rc == 0, r
    r = guests.run(n1, "start", p, rsctmp1)
    assert r.rc == 0, r
    assert assert_plugged(n1, s1, g)
    assert s2.ports("vh") == []
    assert guests.run(n2, "monitor", p, rsctmp2).rc == 7                 # probe on the target

    t = time.monotonic()
    r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=60000)
    assert r.rc == 0, r
    print("OVS migration td-n1 -> td-n2: %.2f s" % (time.monotonic() - t))
    r = guests.run(n2, "migrate_from", p, rsctmp2, meta=META_12)
    assert r.rc == 0, r
    assert n1.state(g["name"]) is None
    assert assert_plugged(n2, s2, g)
    assert s1.ports("vh") == []                                          # unplugged on the source
    assert L.ping(n2.channel_path(g["name"]), "ovs-after")
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0
    assert guests.run(n2, "monitor", p, rsctmp2, interval=10000).rc == 0

    # and back, tunnelled
    p2 = dict(p, migration_mode="tunnelled")
    t = time.monotonic()
    r = guests.run(n2, "migrate_to", p2, rsctmp2, meta=META_21, timeout_ms=60000)
    assert r.rc == 0, r
    print("OVS migration td-n2 -> td-n1 (tunnelled): %.2f s" % (time.monotonic() - t))
    assert guests.run(n1, "migrate_from", p2, rsctmp1, meta=META_21).rc == 0
    assert assert_plugged(n1, s1, g)
    assert s2.ports("vh") == []
    assert L.ping(n1.channel_path(g["name"]), "ovs-back")

    assert guests.run(n1, "stop", p2, rsctmp1).rc == 0
    assert n1.state(g["name"]) is None and n2.state(g["name"]) is None
    assert s1.ports("vh") == [] and s2.ports("vh") == []                 # stop unplugs it too


def test_ovs_bridge_missing_on_the_node_is_not_installed(ovs_pair, guests, rsctmp1):
    (n1, _), (s1, _) = ovs_pair
    g = guests.xml(prefix="tdovs", devices=O.interface_xml("vh-absent", vlan=150))
    p = {"config": g["config"]}
    r = guests.run(n1, "validate-all", p, rsctmp1, check_level=10)
    assert r.rc == 5 and "vh-absent" in r.exit_reason, r
    r = guests.run(n1, "start", p, rsctmp1)
    assert r.rc == 5 and "vh-absent" in r.exit_reason, r
    assert n1.state(g["name"]) is None
    assert s1.ports("vh") == []
    assert guests.run(n1, "monitor", p, rsctmp1).rc == 7
