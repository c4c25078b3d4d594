"""pyra domadd: the CIB fragment builder against golden files, its refusals, and the command's one transaction
(a fake cibadmin: exactly one --create, nothing at all when anything is refused)."""

import os
import xml.etree.ElementTree as ET

import pytest

from pyra.agents import load
from pyra.backends.libvirt_xml import DomainConfig
from pyra.cli import domadd, domadd_cib, domxml
from pyra.cli.main import main
from pyra.host.command import CommandResult

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
CONFIG = "/etc/pyra/gum.xml"


def xml_of(disks, name="gum"):
    return domxml.build(name, 4, 2048, disks, bridge="br0", kinds={d: "block" if d.startswith("/dev/") else "file"
                                                                      for d in disks})


def plan_of(disks, **kw):
    guest, lvm = load("TransientDomain"), load("LVMFilesystem")
    return domadd_cib.build(DomainConfig(xml_of(disks)), CONFIG, guest.all_actions(), lvm.all_actions(), **kw)


def golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("PYRA_UPDATE_GOLDEN"):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(path, encoding="utf-8") as handle:
        assert text == handle.read(), "%s differs (PYRA_UPDATE_GOLDEN=1 rewrites it)" % name


def test_plain_guest():
    plan = plan_of(["/var/lib/pyra/gum.img"])
    assert plan.group_id is None and plan.disk_ids == {}
    golden("plain.xml", plan.tostring())


def test_two_lv_disks_grouped_before_the_guest():
    plan = plan_of(["/dev/vm/gum", "/dev/mapper/data--vg-gum--data", "/var/lib/pyra/swap.img"])
    assert plan.group_id == "g-gum"
    assert plan.disk_ids == {"gum-vda": ("vm", "gum"), "gum-vdb": ("data-vg", "gum-data")}
    assert [p.get("id") for p in plan.element.findall("primitive")] == ["gum-vda", "gum-vdb", "gum"]
    golden("two_lvs_group.xml", plan.tostring())


def test_disk_group_none_is_the_guest_alone():
    plan = plan_of(["/dev/vm/gum", "/dev/data/gum"], disk_group="none")
    assert plan.element.tag == "primitive" and plan.group_id is None
    golden("two_lvs_no_group.xml", plan.tostring())


def test_operations_are_the_agents_own():
    plan = plan_of(["/dev/vm/gum"])
    guest = plan.element.find("primitive[@id='gum']")
    ops = [(o.get("name"), o.get("interval"), o.get("timeout")) for o in guest.iter("op")]
    declared = [(a.name, "%ds" % (a.interval or 0), "%ds" % a.timeout) for a in load("TransientDomain").all_actions()
                if a.name not in domadd_cib.NOT_OPERATIONS]
    assert ops == declared
    util = {nv.get("name"): nv.get("value") for nv in guest.find("utilization")}
    assert util == {"cpu": "4", "memory": "2048"}


def test_lxc_domain_gets_no_migration():
    text = "<domain type='lxc'><name>ct1</name><memory unit='MiB'>64</memory><os><type>exe</type>" \
           "<init>/sbin/init</init></os><devices/></domain>"
    plan = domadd_cib.build(DomainConfig(text), "/etc/pyra/ct1.xml", load("TransientDomain").all_actions())
    assert plan.element.find("meta_attributes") is None
    assert not [o for o in plan.element.iter("op") if o.get("name").startswith("migrate")]
    assert {nv.get("name"): nv.get("value") for nv in plan.element.iter("nvpair")}["hypervisor"] == "lxc:///system"


@pytest.mark.parametrize("path,lv", [
    ("/dev/vm/gum", ("vm", "gum")), ("/dev/mapper/vm-gum", ("vm", "gum")),
    ("/dev/mapper/my--vg-lv--1", ("my-vg", "lv-1")), ("/dev/sda", None), ("/dev/disk/by-id/x", None),
    ("/dev/mapper/nodash", None), ("/var/lib/x.img", None), ("/dev/vm/gum/extra", None), ("/dev/mapper/-x", None),
])
def test_lv_paths(path, lv):
    assert domadd_cib.lv_of_path(path) == lv


def cib(resources="", extra="", status=""):
    return ET.fromstring("<cib epoch='3' admin_epoch='0' num_updates='1'><configuration><crm_config/><nodes/>"
                         "<resources>%s</resources><constraints>%s</constraints></configuration><status>%s</status>"
                         "</cib>" % (resources, extra, status))


def test_refused_when_the_id_exists():
    plan = plan_of(["/dev/vm/gum"])
    existing = "<primitive id='gum' class='ocf' provider='pyra' type='TransientDomain'/>"
    with pytest.raises(domadd_cib.Refused) as err:
        domadd_cib.conflicts(cib(existing), plan, CONFIG)
    assert err.value.code == "FAILED" and "resource gum already exists" in str(err.value)
    with pytest.raises(domadd_cib.Refused) as err:
        domadd_cib.conflicts(cib("<primitive id='gum' class='ocf' provider='heartbeat' type='VirtualDomain'/>"),
                             plan, CONFIG)
    assert err.value.code == "NOT_PYRA" and "not a pyra resource (ocf:heartbeat:VirtualDomain)" in str(err.value)
    with pytest.raises(domadd_cib.Refused, match="gum-vda.*<rsc_location>"):
        domadd_cib.conflicts(cib(extra="<rsc_location id='gum-vda' rsc='x' node='n1' score='1'/>"), plan, CONFIG)
    with pytest.raises(domadd_cib.Refused, match="already the config of resource old"):
        domadd_cib.conflicts(cib("<primitive id='old' class='ocf' provider='pyra' type='TransientDomain'>"
                                 "<instance_attributes id='i'><nvpair id='n' name='config' value='%s'/>"
                                 "</instance_attributes></primitive>" % CONFIG), plan, CONFIG)
    with pytest.raises(domadd_cib.Refused, match="LV vm/gum .*managed by resource fs"):
        domadd_cib.conflicts(cib("<primitive id='fs' class='ocf' provider='pyra' type='LVMFilesystem'>"
                                 "<instance_attributes id='i'><nvpair id='a' name='vgname' value='vm'/>"
                                 "<nvpair id='b' name='lvname' value='gum'/></instance_attributes></primitive>"),
                             plan, CONFIG)
    assert domadd_cib.conflicts(cib("<primitive id='other' class='ocf' provider='pyra' type='PyraExample'/>"),
                                plan, CONFIG) is None
    # the status section repeats resource ids (a resource deleted a moment ago may still be there): not a conflict
    assert domadd_cib.conflicts(cib(status="<node_state id='1'><lrm id='1'><lrm_resources><lrm_resource id='gum' "
                                           "type='TransientDomain'/></lrm_resources></lrm></node_state>"),
                                plan, CONFIG) is None
    fence = "<primitive id='fence-lab' class='stonith' type='fence_pyralab'/>"
    with pytest.raises(domadd_cib.Refused) as err:
        domadd_cib.conflicts(cib(fence, status="<node_state id='1'><lrm id='1'><lrm_resources><lrm_resource "
                                 "id='fence-lab'/></lrm_resources></lrm></node_state>"),
                             plan_of(["/dev/vm/gum"], resource_id="fence-lab"), CONFIG)
    assert err.value.code == "NOT_PYRA" and "(stonith:fence_pyralab)" in str(err.value)


def test_bad_resource_id_is_usage():
    with pytest.raises(domadd_cib.Refused) as err:
        plan_of(["/dev/vm/gum"], resource_id="1gum")
    assert err.value.code == "USAGE"


# -- the command, with a fake cibadmin ------------------------------------------------------------------------
class FakeCib:
    def __init__(self, cib_text):
        self.cib_text = cib_text
        self.calls = []

    def __call__(self, argv, timeout=None, input=None):
        assert timeout, "every external call has a deadline"
        self.calls.append((list(argv), input))
        if argv[:2] == ["cibadmin", "--query"]:
            return CommandResult(argv, 0, self.cib_text)
        if argv[:2] == ["cibadmin", "--create"]:
            ET.fromstring(input)
            return CommandResult(argv, 0)
        raise AssertionError(argv)


@pytest.fixture
def gum(tmp_path):
    path = tmp_path / "gum.xml"
    path.write_text(xml_of(["/dev/vm/gum"]))
    return str(path)


def test_one_create_call(gum, monkeypatch, capsys):
    fake = FakeCib(ET.tostring(cib(), encoding="unicode"))
    monkeypatch.setattr(domadd, "_run", fake)
    assert main(["domadd", gum]) == 0
    assert [c[0][:2] for c in fake.calls] == [["cibadmin", "--query"], ["cibadmin", "--create"]]
    sent = ET.fromstring(fake.calls[1][1])
    assert sent.tag == "group" and sent.get("id") == "g-gum"
    assert sent.find("primitive[@id='gum']/instance_attributes/nvpair[@name='config']").get("value") == gum
    assert "added group g-gum" in capsys.readouterr().out


def test_dry_run_changes_nothing(gum, monkeypatch, capsys):
    fake = FakeCib(ET.tostring(cib(), encoding="unicode"))
    monkeypatch.setattr(domadd, "_run", fake)
    assert main(["domadd", gum, "--dry-run", "--disk-group", "none"]) == 0
    assert [c[0][:2] for c in fake.calls] == [["cibadmin", "--query"]]
    assert ET.fromstring(capsys.readouterr().out).tag == "primitive"


@pytest.mark.parametrize("resources,code", [
    ("<primitive id='gum' class='ocf' provider='pyra' type='TransientDomain'/>", 1),
    ("<primitive id='gum' class='ocf' provider='heartbeat' type='VirtualDomain'/>", 4),
    ("<group id='g-gum'/>", 1),
])
def test_conflict_is_one_line_and_no_create(gum, monkeypatch, capsys, resources, code):
    fake = FakeCib(ET.tostring(cib(resources), encoding="unicode"))
    monkeypatch.setattr(domadd, "_run", fake)
    assert main(["domadd", gum]) == code
    assert [c[0][:2] for c in fake.calls] == [["cibadmin", "--query"]]
    err = capsys.readouterr().err
    assert err.startswith("pyra: ") and len(err.splitlines()) == 1


def test_bad_xml_is_7_before_any_cluster_call(tmp_path, monkeypatch, capsys):
    fake = FakeCib("")
    monkeypatch.setattr(domadd, "_run", fake)
    for text in ("<domain><name>x</name>", "<notadomain/>", "<!DOCTYPE d [<!ENTITY e 'x'>]><domain/>"):
        path = tmp_path / "bad.xml"
        path.write_text(text)
        assert main(["domadd", str(path)]) == 7
        err = capsys.readouterr().err
        assert err.startswith("pyra: ") and len(err.splitlines()) == 1
    assert fake.calls == []


def test_unreachable_cluster_is_5(gum, monkeypatch, capsys):
    monkeypatch.setattr(domadd, "_run", lambda argv, **kw: CommandResult(argv, 102, "", "Could not connect"))
    assert main(["domadd", gum]) == 5
    assert capsys.readouterr().err.startswith("pyra: cannot read the CIB")


def test_refused_create_says_nothing_changed(gum, monkeypatch, capsys):
    def run(argv, **kw):
        if argv[1] == "--query":
            return CommandResult(argv, 0, ET.tostring(cib(), encoding="unicode"))
        return CommandResult(argv, 76, "", "Call cib_create failed (-76): Name not unique on network")
    monkeypatch.setattr(domadd, "_run", run)
    assert main(["domadd", gum]) == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err and "Name not unique" in err


@pytest.mark.parametrize("name", ["plain.xml", "two_lvs_group.xml", "two_lvs_no_group.xml"])
def test_golden_fragments_are_valid_pacemaker_configuration(name, tmp_path):
    import shutil
    import subprocess
    if not shutil.which("crm_verify"):
        pytest.skip("no crm_verify (pacemaker-cli-utils)")
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as handle:
        fragment = handle.read()
    path = tmp_path / "cib.xml"
    path.write_text("<cib validate-with='pacemaker-3.7' epoch='1' num_updates='0' admin_epoch='0'><configuration>"
                    "<crm_config><cluster_property_set id='o'><nvpair id='o-s' name='stonith-enabled' "
                    "value='false'/></cluster_property_set></crm_config><nodes/><resources>%s</resources>"
                    "<constraints/></configuration><status/></cib>" % fragment)
    res = subprocess.run(["crm_verify", "--xml-file", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
