"""TransientDomain's pure XML helpers (pyra.backends.libvirt_xml), no libvirt and no root needed.

Identity (name, UUID, the UUID derived from the name), the startup_signal channel, utilization from <vcpu> and
<memory unit=...>, the console-log rewrite, %n templates with migration_network_suffix, the default remote URI,
and the refusal of DTDs/entities (billion laughs, external SYSTEM entities) before ElementTree expands anything.
"""

import shutil
import tempfile
import uuid as uuidlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import run_agent
from pyra.backends import libvirt_xml as X
from pyra.backends.libvirt_xml import DomainConfig, DomainXMLError, _uuid_text

UUID = "6f1c3e0a-5b7d-4c2e-9a41-0d2f3b4c5d6e"


def dom(body="", name="g1", uuid=UUID, attrs=" type='qemu'"):
    parts = ["<domain%s>" % attrs]
    if name is not None:
        parts.append("<name>%s</name>" % name)
    if uuid is not None:
        parts.append("<uuid>%s</uuid>" % uuid)
    parts.append(body)
    parts.append("</domain>")
    return "".join(parts)


# -- identity ------------------------------------------------------------------------------------------------
def test_identity_from_the_xml_is_normalised():
    cfg = DomainConfig(dom(uuid=UUID.upper()))
    assert (cfg.name, cfg.uuid, cfg.uuid_given, cfg.type) == ("g1", UUID, True, "qemu")


def test_bytes_and_str_parse_alike():
    assert DomainConfig(dom().encode()).uuid == DomainConfig(dom()).uuid == UUID


def test_uuid_derived_from_the_name_is_stable_and_inserted():
    a, b = DomainConfig(dom(uuid=None, name="web")), DomainConfig(dom(uuid=None, name="web"))
    assert a.uuid == b.uuid and not a.uuid_given
    assert a.uuid == str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "pyra:TransientDomain:web"))
    assert a.uuid != DomainConfig(dom(uuid=None, name="db")).uuid
    # the derived UUID goes into the XML libvirt gets, so every node creates the same identity
    again = DomainConfig(a.tostring())
    assert again.uuid == a.uuid and again.uuid_given
    assert ET.fromstring(a.tostring()).findtext("uuid") == a.uuid


def test_name_is_stripped():
    assert DomainConfig(dom(name="  g2\n ")).name == "g2"


@pytest.mark.parametrize("text, words", [
    ("<domain><name>x</name>", "not well-formed"),
    ("", "not well-formed"),
    ("<vm><name>x</name></vm>", "not <domain>"),
    (dom(name=None), "no <name>"),
    (dom(name="   "), "no <name>"),
    (dom(name="a/b"), "not usable"),
    (dom(name=".hidden"), "not usable"),
    (dom(name="a&#10;b"), "not usable"),
    (dom(uuid="not-a-uuid"), "not a UUID"),
])
def test_unusable_xml_is_refused(text, words):
    with pytest.raises(DomainXMLError) as exc:
        DomainConfig(text)
    assert words in str(exc.value)


def test_from_file(tmp_path):
    p = tmp_path / "g.xml"
    p.write_text(dom())
    assert DomainConfig.from_file(str(p)).name == "g1"
    with pytest.raises(OSError):
        DomainConfig.from_file(str(tmp_path / "missing.xml"))


# -- DTDs and entities ----------------------------------------------------------------------------------------
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE domain [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<domain type='qemu'><name>&lol9;</name></domain>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<domain type='qemu'><name>g1</name><description>&xxe;</description></domain>
"""
PARAMETER = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>
<domain type='qemu'><name>g1</name></domain>
"""
EXTERNAL_DTD = """<!DOCTYPE domain SYSTEM "file:///etc/passwd"><domain><name>g1</name></domain>"""
PLAIN_DOCTYPE = """<!DOCTYPE domain><domain><name>g1</name></domain>"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL, PARAMETER, EXTERNAL_DTD, PLAIN_DOCTYPE],
                         ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd", "doctype"])
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_dtd_and_entities_are_refused_before_expansion(text, as_bytes, monkeypatch):
    expanded = []
    monkeypatch.setattr(X.ET, "fromstring", lambda *a, **k: expanded.append(a) or ET.Element("domain"))
    with pytest.raises(DomainXMLError) as exc:
        DomainConfig(text.encode() if as_bytes else text)
    assert "DTDs and entities are not allowed" in str(exc.value)
    assert expanded == []                       # ElementTree never saw the document


def test_a_comment_mentioning_doctype_is_fine():
    assert DomainConfig("<!-- no <!DOCTYPE here --><domain><name>g1</name></domain>").name == "g1"


def test_entity_in_validate_all_is_a_configuration_error():
    # the exit reason is capped (~128 characters) and starts with the config path: keep that path short
    short = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))
    try:
        for i, text in enumerate((BILLION_LAUGHS, EXTERNAL)):
            p = short / ("e%d.xml" % i)
            p.write_text(text)
            r = run_agent("TransientDomain", "validate-all", {"config": str(p)}, rsctmp=str(short))
            assert r.rc == 6, r
            assert len(r.exit_reasons) == 1, r
            assert "DTDs and entities are not allowed" in r.exit_reason, r
            assert "root:" not in r.stdout + r.stderr  # nothing of /etc/passwd leaked
            assert r.elapsed < 5.0, r
    finally:
        shutil.rmtree(short)


# -- startup_signal channel -------------------------------------------------------------------------------------
def chan(ctype="unix", ttype="virtio", name="startup_signal", path=None):
    src = "<source mode='bind' path='%s'/>" % path if path else ""
    return "<channel type='%s'>%s<target type='%s' name='%s'/></channel>" % (ctype, src, ttype, name)


@pytest.mark.parametrize("devices, has", [
    (chan(), True),
    (chan(path="/run/x.sock"), True),
    (chan(ctype="pty"), False),
    (chan(ttype="guestfwd"), False),
    (chan(name="org.qemu.guest_agent.0"), False),
    (chan(name="org.qemu.guest_agent.0") + chan(), True),
    ("", False),
])
def test_startup_channel_detection(devices, has):
    assert DomainConfig(dom("<devices>%s</devices>" % devices)).has_startup_channel() is has


def test_no_devices_no_channel():
    assert not DomainConfig(dom()).has_startup_channel()
    assert X.channel_path(dom()) is None


def test_channel_path_from_the_live_xml():
    live = dom("<devices>%s%s</devices>" % (chan(name="other", path="/run/o.sock"),
                                             chan(path="/var/lib/libvirt/qemu/channel/target/ss.sock")))
    assert X.channel_path(live) == "/var/lib/libvirt/qemu/channel/target/ss.sock"
    assert X.channel_path(live.encode()) == "/var/lib/libvirt/qemu/channel/target/ss.sock"
    assert X.channel_path(ET.fromstring(live), "other") == "/run/o.sock"
    without_path = dom("<devices>%s</devices>" % chan())
    assert X.channel_path(without_path) is None
    assert X.channel_path(without_path, need_path=False) == ""


# -- utilization -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, cpus", [
    ("", 1), ("<vcpu>4</vcpu>", 4), ("<vcpu placement='static'> 2 </vcpu>", 2), ("<vcpu>0</vcpu>", 1),
    ("<vcpu>lots</vcpu>", 1),
])
def test_vcpus(body, cpus):
    assert DomainConfig(dom(body)).vcpus() == cpus


@pytest.mark.parametrize("body, mib", [
    ("", 0),
    ("<memory>524288</memory>", 512),                               # KiB by default
    ("<memory unit='KiB'>1048576</memory>", 1024),
    ("<memory unit='k'>2048</memory>", 2),
    ("<memory unit='MiB'>128</memory>", 128),
    ("<memory unit='M'>128</memory>", 128),
    ("<memory unit='MB'>1000</memory>", 953),                        # 10^9 bytes
    ("<memory unit='GiB'>2</memory>", 2048),
    ("<memory unit='G'>1</memory>", 1024),
    ("<memory unit='GB'>1</memory>", 953),
    ("<memory unit='b'>1073741824</memory>", 1024),
    ("<memory unit='bytes'>1048576</memory>", 1),
    ("<memory unit='TiB'>1</memory>", 1 << 20),
    ("<memory unit='PiB'>1</memory>", 1 << 30),
    ("<memory unit='parsecs'>1</memory>", 0),                        # unknown unit: no utilization, not a guess
    ("<memory unit='GiB'>4</memory><currentMemory unit='GiB'>1</currentMemory>", 4096),   # the maximum wins
    ("<memory unit='GiB'>4</memory><currentMemory unit='MiB'> 1536 </currentMemory>", 4096),
    ("<currentMemory unit='MiB'>1536</currentMemory>", 1536),           # no <memory>: what there is
    # libvirt's examples/xml/test/testdomfc4.xml: libvirt's own maxMemory says 254 MiB
    ("<memory>261072</memory><currentMemory>131072</currentMemory>", 254),
])
def test_memory_mib(body, mib):
    assert DomainConfig(dom(body)).memory_mib() == mib


# -- node resources --------------------------------------------------------------------------------------------
def test_disk_sources_and_networks():
    cfg = DomainConfig(dom(
        "<os><type>hvm</type><kernel>/k/vmlinux</kernel><initrd>/k/initrd</initrd></os><devices>"
        "<disk type='file'><source file='/img/a.raw'/></disk><disk type='block'><source dev='/dev/vg/b'/></disk>"
        "<disk type='dir'><source dir='/srv/d'/></disk><disk type='file' device='cdrom'/>"
        "<interface type='network'><source network='default'/></interface>"
        "<interface type='bridge'><source bridge='br0'/></interface><interface type='user'/>"
        "</devices>"))
    assert cfg.disk_sources() == [("file", "/img/a.raw"), ("block", "/dev/vg/b"), ("dir", "/srv/d"),
                                  ("file", "/k/vmlinux"), ("file", "/k/initrd")]
    assert cfg.networks() == [("network", "default"), ("bridge", "br0")]


# -- console log -------------------------------------------------------------------------------------------------
def test_console_log_rewrite_replaces_only_serial_port_0_and_its_console():
    cfg = DomainConfig(dom("<devices><serial type='pty'><target port='0'/></serial>"
                           "<serial type='pty'><target port='1'/></serial>"
                           "<console type='pty'><target type='serial' port='0'/></console>"
                           "<console type='pty'><target type='virtio' port='1'/></console>%s</devices>" % chan()))
    cfg.set_console_log("/var/log/pyra/g1.console")
    root = ET.fromstring(cfg.tostring())
    dev = root.find("devices")
    serials, consoles = dev.findall("serial"), dev.findall("console")
    assert len(serials) == 2 and len(consoles) == 2
    ours = [el for el in serials + consoles if el.get("type") == "file"]
    assert len(ours) == 2
    for el in ours:
        assert el.find("source").attrib == {"path": "/var/log/pyra/g1.console", "append": "on"}
    assert [el.find("target").get("port") for el in serials] == ["1", "0"]   # port 1 kept, port 0 replaced
    assert [el.find("target").attrib for el in consoles] == [{"type": "virtio", "port": "1"},
                                                             {"type": "serial", "port": "0"}]
    assert X.channel_path(root, need_path=False) == ""              # other devices untouched


def test_console_log_without_devices_adds_them():
    cfg = DomainConfig(dom())
    cfg.set_console_log("/c.log")
    assert ET.fromstring(cfg.tostring()).find("devices/serial/source").get("path") == "/c.log"


# -- %n templates and URIs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("template, node, suffix, out", [
    ("qemu+tcp://%n/system", "node1", "", "qemu+tcp://node1/system"),
    ("qemu+tcp://%n/system", "node1.example.com", "-mig", "qemu+tcp://node1-mig.example.com/system"),
    ("qemu+tcp://%n/system", "node1", "-mig", "qemu+tcp://node1-mig/system"),
    ("tcp://%n:49152", "n2.lan", "-m", "tcp://n2-m.lan:49152"),
    ("%n-%n", "a", "", "a-a"),
    ("100%%/%n", "a", "", "100%/a"),
    ("%%n", "a", "", "%n"),
    ("tail%", "a", "", "tail%"),
    ("%x%n", "a", "", "%xa"),
    ("no template", "a", "-m", "no template"),
])
def test_expand_node(template, node, suffix, out):
    assert X.expand_node(template, node, suffix) == out


def test_node_with_suffix():
    assert X.node_with_suffix("node1", "") == "node1"
    assert X.node_with_suffix("node1.a.b", "-mig") == "node1-mig.a.b"
    assert X.node_with_suffix("10", "x") == "10x"


@pytest.mark.parametrize("hypervisor, transport, out", [
    ("qemu:///system", "tcp", "qemu+tcp://%n/system"),
    ("qemu:///system", "ssh", "qemu+ssh://%n/system"),
    ("qemu+unix:///system?socket=/run/td/libvirt-sock", "tls", "qemu+tls://%n/system"),
    ("qemu:///session", "tcp", "qemu+tcp://%n/session"),
    ("qemu+ssh://root@src/system", "tcp", "qemu+tcp://%n/system"),
    ("xen://", "tcp", "xen+tcp://%n/system"),
])
def test_default_remote_uri(hypervisor, transport, out):
    assert X.default_remote_uri(hypervisor, transport) == out
    assert X.expand_node(out, "node2.example.com", "-mig").count("node2-mig.example.com") == 1


def test_default_remote_uri_needs_a_scheme():
    with pytest.raises(DomainXMLError):
        X.default_remote_uri("/var/run/libvirt", "tcp")


def test_ovs_bridges_and_network_disks():
    cfg = DomainConfig(dom(
        "<devices><disk type='network' device='disk'><source protocol='rbd' name='pool/img'>"
        "<host name='mon1' port='6789'/></source><target dev='vda'/></disk>"
        "<disk type='volume'><source pool='p' volume='v'/><target dev='vdb'/></disk>"
        "<interface type='bridge'><source bridge='vh'/><virtualport type='openvswitch'/>"
        "<vlan><tag id='150'/></vlan></interface>"
        "<interface type='bridge'><source bridge='br0'/></interface></devices>"))
    assert cfg.disk_sources() == []                  # no local path to check: QEMU reaches them itself
    assert cfg.networks() == [("ovs", "vh"), ("bridge", "br0")]


@given(st.uuids(), st.sampled_from(["{%s}", "urn:uuid:%s", "%s", "plain", "upper"]))
def test_uuid_forms_read_as_the_uuid_module_reads_them(value, form):
    text = {"plain": value.hex, "upper": str(value).upper()}.get(form) or form % value
    el = ET.Element("uuid")
    el.text = " %s\n" % text
    assert _uuid_text(el) == str(uuidlib.UUID(text.strip()))


@given(st.text(max_size=40))
def test_what_the_uuid_module_refuses_is_refused(text):
    try:
        expected = str(uuidlib.UUID(text.strip()))
    except ValueError:
        expected = None
    el = ET.Element("uuid")
    el.text = text
    try:
        got = _uuid_text(el)
    except DomainXMLError:
        got = None
    # never a UUID the uuid module would not read, never a different one (int() in uuid.UUID also takes
    # underscores and signs, which pyra refuses)
    if expected is None:
        assert got is None
    if got is not None:
        assert got == expected
