"""pyra vm: finding the guest (resource id or domain name), the node's libvirt URI by the agent's rule, the keys
sent, vnc's address, and the one-line errors with their exit codes; on the recorded lab XML (data/) with a stub
hypervisor, no libvirtd and no cluster.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "lib"))

from pyra.cli import clusterstate, main, vm, vm_guest  # noqa: E402
from pyra.cli.main import CliError  # noqa: E402

DATA = os.path.join(HERE, "data")


def texts(name):
    out = []
    for suffix in ("cib", "mon"):
        with open(os.path.join(DATA, "%s.%s.xml" % (name, suffix)), encoding="utf-8") as f:
            out.append(f.read())
    return out


@pytest.fixture
def state(tmp_path, monkeypatch):
    """The settled lab cluster, vm-a's config pointing to a local copy named 'cap-a'."""
    cib, mon = texts("settled")
    cfg = tmp_path / "cap-a.xml"
    cfg.write_text("<domain type='qemu'><name>cap-a</name><uuid>3f1c1a47-54c5-4d3e-9a57-0f6d1c0d2a11</uuid>"
                   "<memory unit='MiB'>128</memory><vcpu>1</vcpu><devices/></domain>")
    cib = cib.replace("/var/tmp/pyra-pcmk/shared/cap-a.xml", str(cfg))
    st = clusterstate.parse(cib, mon)
    monkeypatch.setattr(clusterstate, "load", lambda *a, **k: st)
    return st


class Dom:
    def __init__(self, xml="<domain><name>cap-a</name><devices/></domain>"):
        self.calls = []
        self._xml = xml

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name,) + args)
            return 0
        return call

    def XMLDesc(self, flags=0):  # noqa: N802
        return self._xml


class Hv:
    def __init__(self, dom):
        self.dom = dom
        self.uri = "stub"

    def call(self, fn, *args, timeout=None):
        return fn(*args)

    def xml(self, dom, flags=0):
        return dom.XMLDesc(flags)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def dom(monkeypatch):
    d = Dom()
    monkeypatch.setattr(vm_guest.Guest, "connect", lambda self, deadline, uri=None: Hv(d))
    monkeypatch.setattr(vm_guest.Guest, "lookup", lambda self, hv: hv.dom)
    return d


def test_find_by_resource_and_by_domain_name(state):
    by_id = vm_guest.find(state, "vm-a")
    by_name = vm_guest.find(state, "cap-a")
    assert by_id.rsc is by_name.rsc and by_name.domain == "cap-a"
    assert by_id.uuid == "3f1c1a47-54c5-4d3e-9a57-0f6d1c0d2a11"


def test_uri_is_the_agents_rule(state):
    g = vm_guest.find(state, "vm-a")
    node = g.node
    assert g.uri() == "qemu+tcp://%s/system" % node                       # defaults from the agent's schema
    g.rsc.params.update(migration_transport="ssh", migration_user="admin", migration_network_suffix="-mig")
    g = vm_guest.find(state, "vm-a")
    assert g.uri("n2.example.com") == "qemu+ssh://admin@n2-mig.example.com/system"
    g.rsc.params.update(remote_uri="qemu+tls://%n.lan/system")
    assert vm_guest.find(state, "vm-a").uri("n3") == "qemu+tls://n3-mig.lan/system"


@pytest.mark.parametrize("name,code,words", [("nope", 3, "no pyra guest"), ("dummy", 4, "only on pyra resources"),
                                             ("ex1", 4, "TransientDomain resources only")])
def test_bad_names(state, capsys, name, code, words):
    assert main.main(["vm", name, "where"]) == code
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_stopped_guest_is_exit_8_with_its_last_node(state, capsys):
    state.resources["vm-b"].last_node = "n3"
    assert main.main(["vm", "vm-b", "console"]) == 8
    err = capsys.readouterr().err
    assert "not running" in err and "last ran on n3" in err
    assert main.main(["vm", "vm-b", "where"]) == 8


def test_keys(state, dom, capsys):
    assert main.main(["vm", "cap-a", "ctrlaltdel"]) == 0
    assert main.main(["vm", "cap-a", "sysrq", "h"]) == 0
    assert main.main(["vm", "vm-a", "reset"]) == 0
    assert main.main(["vm", "vm-a", "nmi"]) == 0
    from pyra.backends import libvirt_api as api
    linux = api.libvirt.VIR_KEYCODE_SET_LINUX
    assert dom.calls == [("sendKey", linux, 100, [29, 56, 111], 3, 0), ("sendKey", linux, 100, [56, 99, 35], 3, 0),
                         ("reset", 0), ("injectNMI", 0)]
    assert main.main(["vm", "vm-a", "sysrq", "F1"]) == 2
    assert "sysrq takes" in capsys.readouterr().err


def test_sysrq_keycodes():
    assert [vm.KEYCODES[k] for k in "sub0c1"] == [31, 22, 48, 11, 46, 2]


def test_vnc(state, dom, capsys):
    dom._xml = ("<domain><devices><graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>"
                "<listen type='address' address='127.0.0.1'/></graphics></devices></domain>")
    assert main.main(["vm", "vm-a", "vnc"]) == 0
    out = capsys.readouterr().out
    node = state.resources["vm-a"].nodes[0]
    assert "VNC on %s:5901 (display :1)" % node in out
    assert "ssh -N -L 5900:localhost:5901 root@%s" % node in out
    dom._xml = "<domain><devices/></domain>"
    assert main.main(["vm", "vm-a", "vnc"]) == 1
    assert "no VNC display" in capsys.readouterr().err


def test_libvirt_unreachable_is_exit_6(state, monkeypatch, capsys):
    from pyra.backends import libvirt_api as api

    def refuse(self, timeout=None):
        raise api.Unreachable("cannot connect to %s: connection refused" % self.uri)
    monkeypatch.setattr(api.Hypervisor, "open", refuse)
    assert main.main(["vm", "vm-a", "reset"]) == 6
    err = capsys.readouterr().err
    assert "libvirt on" in err and "qemu+tcp://" in err


def test_migrate_checks_before_touching_the_cib(state, monkeypatch, capsys):
    from pyra.cli import clusterwait
    touched = []
    monkeypatch.setattr(clusterwait, "tool", lambda argv, timeout=None: touched.append(argv))
    assert main.main(["vm", "vm-a", "migrate", "n9"]) == 3
    assert main.main(["vm", "vm-b", "migrate"]) == 8
    assert main.main(["vm", "dummy", "stop"]) == 4
    assert touched == []
    assert main.main(["vm", "vm-a", "migrate", "n3", "--no-wait", "--lifetime", "120"]) in (0,)
    if state.resources["vm-a"].nodes != ["n3"]:
        assert touched == [["crm_resource", "--move", "--resource", "vm-a", "--lifetime", "PT120S", "--node", "n3"]]


def test_every_subcommand_has_help(capsys):
    for argv in (["list"], ["vm", "x", "console"], ["vm", "x", "migrate"], ["node", "n1", "evacuate"],
                 ["node", "n1", "maintenance"]):
        with pytest.raises(SystemExit) as e:
            main.main(argv + ["--help"])
        assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_cli_error_is_one_line():
    err = CliError("a\nb", 5)
    assert err.code == 5


def test_reset_refuses_a_guest_that_would_stop(state, dom, capsys):
    dom._xml = "<domain><name>cap-a</name><on_reboot>destroy</on_reboot><devices/></domain>"
    assert main.main(["vm", "vm-a", "reset"]) == 1
    assert "on_reboot=destroy" in capsys.readouterr().err and dom.calls == []
    assert main.main(["vm", "vm-a", "reset", "--force"]) == 0
    assert dom.calls == [("reset", 0)]


def _cluster(where, limit=None):
    """A synthetic CIB + crm_mon pair: TransientDomain g1..g3 (allow-migrate) placed as ``where`` says."""
    props = ('<cluster_property_set id="o"><nvpair id="ml" name="migration-limit" value="%s"/>'
             '</cluster_property_set>' % limit) if limit is not None else ""
    prims = "".join('<primitive id="%s" class="ocf" provider="pyra" type="TransientDomain">'
                    '<meta_attributes id="%s-m"><nvpair id="%s-am" name="allow-migrate" value="true"/>'
                    '</meta_attributes></primitive>' % (g, g, g) for g in sorted(where))
    cib = ('<cib><configuration><crm_config>%s</crm_config><nodes/><resources>%s</resources><constraints/>'
           '</configuration><status/></cib>' % (props, prims))
    nodes = "".join('<node name="n%d" online="true" type="member"/>' % i for i in (1, 2, 3))
    rscs = "".join('<resource id="%s" resource_agent="ocf:pyra:TransientDomain" role="Started" active="true">'
                   '<node name="%s"/></resource>' % (g, n) for g, n in sorted(where.items()))
    mon = "<pacemaker-result><nodes>%s</nodes><resources>%s</resources></pacemaker-result>" % (nodes, rscs)
    return clusterstate.parse(cib, mon)


def test_evacuate_respects_migration_limit(monkeypatch):
    import io
    from pyra.cli import clusterwait, node
    where = {"g1": "n1", "g2": "n1", "g3": "n1"}
    banned, in_flight_max, flying = [], [0], set()

    waves = []

    def ban_many(rids, node_, seconds):
        assert node_ == "n1"
        waves.append(list(rids))
        banned.extend(rids)
        flying.update(rids)
        in_flight_max[0] = max(in_flight_max[0], len(flying))
    monkeypatch.setattr(clusterwait, "ban_many", ban_many)
    monkeypatch.setattr(node.time, "sleep", lambda s: None)
    rounds = [0]

    def loader():
        rounds[0] += 1
        for g in sorted(flying):  # one round later each banned guest has arrived on n2
            if rounds[0] % 2 == 0:
                where[g] = "n2"
                flying.discard(g)
        return _cluster(where, limit=2)
    out = io.StringIO()
    moves = node.evacuate("n1", 60, 600, out=out, loader=loader)
    assert banned == ["g1", "g2", "g3"] and in_flight_max[0] == 2
    assert waves == [["g1", "g2"], ["g3"]]                     # each wave in one CIB change
    assert [(m.unit, m.source, m.target, m.error) for m in moves] == [(g, "n1", "n2", None) for g in banned]
    text = node.table(moves)
    assert text.splitlines()[0].split() == ["GUEST", "FROM", "TO", "SECONDS", "HOW"]
    assert [ln.split()[:3] for ln in text.splitlines()[1:]] == [[g, "n1", "n2"] for g in banned]
    assert "at most 2 at once" in out.getvalue()


def test_evacuate_unknown_node_changes_nothing(monkeypatch):
    from pyra.cli import clusterwait, node
    monkeypatch.setattr(clusterwait, "tool", lambda argv, timeout=None: pytest.fail("CIB touched"))
    with pytest.raises(CliError) as e:
        node.evacuate("n9", 10, 60, loader=lambda: _cluster({"g1": "n1"}))
    assert e.value.code == 3


def test_info_shows_libvirt_next_to_the_cluster(state, dom, capsys, monkeypatch):
    dom._xml = ("<domain><name>cap-a</name><uuid>3f1c1a47-54c5-4d3e-9a57-0f6d1c0d2a11</uuid><devices>"
                "<disk type='file' device='disk'><source file='/srv/cap-a.img'/><target dev='vda'/></disk>"
                "<interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/>"
                "<target dev='vnet0'/></interface></devices></domain>")
    from pyra.backends import libvirt_api as api
    monkeypatch.setattr(Dom, "info", lambda self: [api.RUNNING, 131072, 131072, 1, 12_500_000_000], raising=False)
    monkeypatch.setattr(Dom, "state", lambda self: [api.RUNNING, 1], raising=False)
    monkeypatch.setattr(Dom, "ID", lambda self: 7, raising=False)
    monkeypatch.setattr(Hv, "state", lambda self, d: tuple(d.state()), raising=False)
    assert main.main(["vm", "vm-a", "info"]) == 0
    out = capsys.readouterr().out
    node = state.resources["vm-a"].nodes[0]
    assert "cluster:  vm-a (ocf:pyra:TransientDomain) %s, target-role Started, allow-migrate" % node in out
    assert "libvirt:  cap-a on %s (qemu+tcp://%s/system): running, id 7" % (node, node) in out
    assert "1 vCPU, 128 MiB" in out and "12.5 s of CPU time" in out
    assert "disk vda (disk): /srv/cap-a.img" in out and "nic 52:54:00:aa:bb:cc bridge br0 -> vnet0" in out
    assert main.main(["vm", "vm-a", "info", "--json"]) == 0
    import json
    doc = json.loads(capsys.readouterr().out)
    assert doc["cluster"]["node"] == node and doc["libvirt"]["state"] == "running"


def test_ban_xml_is_what_crm_resource_writes():
    import xml.etree.ElementTree as ET
    from pyra.cli import clusterwait
    root = ET.fromstring(clusterwait.ban_xml(["vm-a", "vm-b"], "n1", 600, now=0))
    assert root.tag == "constraints"
    locs = root.findall("rsc_location")
    assert [(loc.get("id"), loc.get("rsc")) for loc in locs] == [("cli-ban-vm-a-on-n1", "vm-a"),
                                                               ("cli-ban-vm-b-on-n1", "vm-b")]
    rule = locs[0].find("rule")
    assert rule.get("score") == "-INFINITY"
    assert rule.find("expression").attrib["value"] == "n1"
    assert rule.find("date_expression").get("end") == "1970-01-01 00:10:00Z"
