"""pyra create-domxml: schema-valid XML for every option combination, a UUID and MAC that depend only on the
name, and bad input as one line with exit 2 (never a traceback)."""

import itertools
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness import REPO
from pyra.backends import libvirt_schema
from pyra.backends.libvirt_xml import DomainConfig
from pyra.cli import domxml
from pyra.cli.main import main

PYRA = os.path.join(REPO, "sbin", "pyra")
needs_schema = pytest.mark.skipif(not os.path.isfile(libvirt_schema.DOMAIN_RNG), reason="no libvirt schema")


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    d = tmp_path_factory.mktemp("disks")
    files = []
    for i in range(2):
        path = d / ("d%d.img" % i)
        path.write_bytes(b"")
        files.append(str(path))
    return {"file": files, "block": ["/dev/vg_san/lv0", "/dev/mapper/vg_san-lv1"]}


NETS = [("--bridge", "br0"), ("--ovs", "vh"), ("--ovs", "vh", "--vlan", "150")]
MACS = [(), ("--mac", "auto"), ("--mac", "52:54:00:AB:cd:01")]
CONSOLES = [(), ("--console-log", "/var/log/pyra/g.log")]
KINDS = ["file", "block"]
COUNTS = [1, 2]
TYPES = [(), ("--type", "qemu", "--machine", "pc"), ("--type", "kvm")]


def generate(argv, capsys):
    code = main(["create-domxml"] + list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@needs_schema
@pytest.mark.parametrize("net,mac,console,kind,count,typ",
                         list(itertools.product(NETS, MACS, CONSOLES, KINDS, COUNTS, TYPES)))
def test_every_combination_is_schema_valid(net, mac, console, kind, count, typ, disks, capsys):
    argv = ["--name", "g1", "--cpus", "2", "--mem", "512m", "--disk"] + disks[kind][:count] + list(net) + \
        list(mac) + list(console) + list(typ)
    code, out, err = generate(argv, capsys)
    assert code == 0 and err == ""
    assert libvirt_schema.check(out.encode()) is None
    cfg = DomainConfig(out)
    assert cfg.name == "g1" and cfg.vcpus() == 2 and cfg.memory_mib() == 512
    assert cfg.has_startup_channel()
    assert cfg.disk_sources() == [(kind, p) for p in disks[kind][:count]]
    assert cfg.networks() == [("ovs" if net[0] == "--ovs" else "bridge", net[1])]
    root = ET.fromstring(out)
    assert [t.get("bus") for t in root.iter("target") if t.get("dev")] == ["virtio"] * count
    assert root.find("devices/interface/model").get("type") == "virtio"
    tag = root.find("devices/interface/vlan/tag")
    assert (tag.get("id") if tag is not None else None) == ("150" if "--vlan" in net else None)
    serial = root.find("devices/serial")
    if console:
        assert serial.get("type") == "file" and serial.find("source").get("append") == "on"
    else:
        assert serial.get("type") == "pty"
    expected_mac = "52:54:00:ab:cd:01" if "52:54:00:AB:cd:01" in mac else domxml.derived_mac("g1")
    assert root.find("devices/interface/mac").get("address") == expected_mac
    assert root.get("type") == ("qemu" if "qemu" in typ else "kvm")


@needs_schema
def test_direct_kernel_boot_and_no_graphics_are_valid(disks, capsys):
    code, out, _ = generate(["--name", "k", "--cpus", "1", "--mem", "128", "--bridge", "br0", "--disk",
                             disks["file"][0], "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img",
                             "--cmdline", "console=ttyS0 <&>", "--graphics", "none"], capsys)
    assert code == 0 and libvirt_schema.check(out.encode()) is None
    root = ET.fromstring(out)
    assert root.findtext("os/cmdline") == "console=ttyS0 <&>" and root.find("os/boot") is None
    assert root.find("devices/graphics") is None


def test_uuid_and_mac_depend_only_on_the_name(disks, capsys):
    base = ["--cpus", "1", "--mem", "1g", "--bridge", "br0", "--disk", disks["file"][0]]
    first = ET.fromstring(generate(["--name", "gum"] + base, capsys)[1])
    again = ET.fromstring(generate(["--name", "gum"] + base[:3] + ["2g", "--ovs", "vh", "--disk"] +
                                   disks["block"], capsys)[1])
    other = ET.fromstring(generate(["--name", "elm"] + base, capsys)[1])

    def ident(root):
        return root.findtext("uuid"), root.find("devices/interface/mac").get("address")
    assert ident(first) == ident(again) != ident(other)
    assert ident(first)[1].startswith("52:54:00:")
    # the UUID is the one the agent derives for the same name in an XML without one
    assert ident(first)[0] == DomainConfig("<domain><name>gum</name></domain>").uuid
    # and it does not depend on this interpreter's hash seed: a fresh process gives the same
    out = subprocess.run([sys.executable, PYRA, "create-domxml", "--name", "gum"] + base,
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONHASHSEED="7"))
    assert ident(ET.fromstring(out.stdout)) == ident(first)


def test_name_is_escaped_not_injected(disks, capsys):
    code, _, err = generate(["--name", "a<b>", "--cpus", "1", "--mem", "1g", "--bridge", "br0", "--disk",
                             disks["file"][0]], capsys)
    assert code == 2 and err.startswith("pyra: name") and len(err.splitlines()) == 1


@pytest.mark.parametrize("bad,words", [
    (["--cpus", "0"], "at least 1"),
    (["--cpus", "two"], "not a number"),
    (["--mem", "8x"], "not a size"),
    (["--mem", "0"], "less than 1 MiB"),
    (["--mem", "1.3m"], "whole number"),
    (["--mac", "52:54:00:zz:00:01"], "not a MAC"),
    (["--mac", "01:00:5e:00:00:01"], "multicast"),
    (["--vlan", "150"], "--vlan needs --ovs"),
    (["--ovs", "vh", "--vlan", "5000"], "VLAN id"),
    (["--bridge", "br0", "--ovs", "vh"], "not allowed with"),
    (["--disk", "relative.img"], "absolute path"),
])
def test_bad_input_is_one_line_and_exit_2(bad, words, disks):
    argv = {"--name": "g1", "--cpus": "1", "--mem": "1g", "--disk": disks["file"][0]}
    for i in range(0, len(bad), 2):
        argv[bad[i]] = bad[i + 1]
    flat = ["create-domxml"]
    for key, value in argv.items():
        flat += [key, value]
    if "--bridge" not in argv and "--ovs" not in argv:
        flat += ["--bridge", "br0"]
    res = subprocess.run([sys.executable, PYRA] + flat, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    last = res.stderr.strip().splitlines()[-1]
    assert words in last and last.startswith("pyra"), res.stderr


def test_output_file_is_written_only_when_valid(disks, tmp_path, capsys):
    out = tmp_path / "g.xml"
    code, stdout, _ = generate(["--name", "g1", "--cpus", "1", "--mem", "1g", "--bridge", "br0", "--disk",
                                disks["file"][0], "--output", str(out)], capsys)
    assert code == 0 and stdout == "" and DomainConfig.from_file(str(out)).name == "g1"
    assert os.listdir(tmp_path) == ["g.xml"]


def test_a_generator_bug_is_exit_7_and_writes_nothing(disks, tmp_path, capsys, monkeypatch):
    if not os.path.isfile(libvirt_schema.DOMAIN_RNG):
        pytest.skip("no libvirt schema")
    real = domxml.build
    monkeypatch.setattr(domxml, "build", lambda *a, **k: real(*a, **k).replace("<vcpu", "<vcpux").replace(
        "</vcpu>", "</vcpux>"))
    out = tmp_path / "g.xml"
    code, stdout, err = generate(["--name", "g1", "--cpus", "1", "--mem", "1g", "--bridge", "br0", "--disk",
                                  disks["file"][0], "--output", str(out)], capsys)
    assert code == 7 and stdout == "" and not out.exists()
    assert err.startswith("pyra: create-domxml made XML") and len(err.splitlines()) == 1


@pytest.mark.parametrize("text,mib", [("512m", 512), ("8g", 8192), ("8G", 8192), ("1024", 1024), ("1.5g", 1536),
                                      ("2GiB", 2048), ("1t", 1 << 20), ("4096k", 4)])
def test_sizes(text, mib):
    assert domxml.parse_size_mib(text) == mib


def test_target_names():
    assert [domxml.target_dev(i) for i in (0, 1, 25, 26, 27)] == ["vda", "vdb", "vdz", "vdaa", "vdab"]


def test_every_subcommand_has_help(capsys):
    from pyra.cli.main import build_parser
    parser = build_parser()
    for name in ("create-domxml", "domadd"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        assert "usage: pyra " + name in capsys.readouterr().out
