"""``pyra create-domxml``: a domain XML that TransientDomain can run, from a few options.

virtio disks (raw; ``<disk type='block'>`` for a block device or a path under /dev, ``type='file'`` otherwise),
one virtio NIC on a Linux bridge or an Open vSwitch bridge (optionally VLAN-tagged), the ``startup_signal``
virtio-serial channel of TransientDomain's readiness handshake, a serial console (a pty, or a file appended to
with --console-log, written by the same code the agent's ``console_log`` uses), a VNC display on 127.0.0.1
(reached through an SSH tunnel, see ``pyra vm NAME vnc``) unless --graphics none, and optional direct kernel
boot. The UUID and the MAC are derived from the name: the same name gives the same UUID and MAC on every node
and every run (the UUID is the one TransientDomain itself derives for a domain XML without one).

The XML is built with ElementTree and checked against libvirt's RelaxNG schema before anything is written: a
document the schema refuses is a bug of this generator (exit 7), never a bad file on disk.
"""

import hashlib
import os
import re
import stat
import sys
import xml.etree.ElementTree as ET

from pyra.cli.main import BAD_XML, FAILED, USAGE, CliError

MAC_PREFIX = "52:54:00"  # QEMU/KVM's locally administered OUI, as virt-install uses
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")
_BRIDGE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_MIB = {"k": 1.0 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}


# -- values ---------------------------------------------------------------------------------------------------
def parse_size_mib(text):
    """A memory size in MiB: '512m', '8g', '1.5G', '1024' (no unit: MiB), '4194304k'. ValueError otherwise."""
    m = _SIZE.match(text or "")
    if not m:
        raise ValueError("%r is not a size (examples: 512m, 8g, 1024 for MiB)" % text)
    mib = float(m.group(1)) * _SIZE_MIB[m.group(2).lower()]
    if mib != int(mib):
        raise ValueError("%r is not a whole number of MiB" % text)
    if mib < 1:
        raise ValueError("%r is less than 1 MiB" % text)
    return int(mib)


def derived_mac(name):
    """52:54:00:xx:xx:xx from a hash of the domain name (stable across nodes, runs and Python versions)."""
    digest = hashlib.sha256(("pyra:mac:" + name).encode("utf-8")).digest()
    return MAC_PREFIX + "".join(":%02x" % b for b in digest[:3])


def derived_uuid(name):
    """The UUID TransientDomain derives for a domain XML without one (pyra.backends.libvirt_xml)."""
    from pyra.backends.libvirt_xml import DomainConfig
    return DomainConfig("<domain><name>%s</name></domain>" % _escape(name)).uuid


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def normalise_mac(text):
    mac = text.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise ValueError("%r is not a MAC address (aa:bb:cc:dd:ee:ff)" % text)
    if int(mac[:2], 16) & 1:
        raise ValueError("%s is a multicast MAC address, a NIC needs a unicast one" % mac)
    if mac == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a usable MAC address")
    return mac


def disk_kind(path):
    """'block' or 'file': what PATH is on this machine; a path that does not exist here (an LV not active on
    this node) is a block device when it is under /dev, else a file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "block" if path.startswith("/dev/") else "file"
    if stat.S_ISBLK(mode):
        return "block"
    if stat.S_ISREG(mode):
        return "file"
    raise ValueError("disk %s is neither a block device nor a regular file" % path)


def target_dev(index):
    """vda, vdb, ... vdz, vdaa, ... (libvirt's naming of virtio disks)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return "vd" + letters


# -- the document ---------------------------------------------------------------------------------------------
def build(name, cpus, memory_mib, disks, bridge=None, ovs=None, vlan=None, mac="auto", console_log=None,
          machine=None, domain_type="kvm", graphics="vnc", kernel=None, initrd=None, cmdline=None,
          kinds=None):
    """The domain XML text. ``disks``: absolute paths; ``kinds``: optional {path: 'block'|'file'} (else what
    each path is, see disk_kind). Raises ValueError for inconsistent input."""
    from pyra.backends.libvirt_xml import DomainConfig
    if not _NAME.match(name or ""):
        raise ValueError("name %r: use 1-64 letters, digits, '_', '.', '+', '-' (not first)" % name)
    if cpus < 1:
        raise ValueError("--cpus must be at least 1")
    if memory_mib < 1:
        raise ValueError("--mem must be at least 1 MiB")
    if (bridge is None) == (ovs is None):
        raise ValueError("give exactly one of --bridge and --ovs")
    if vlan is not None and ovs is None:
        raise ValueError("--vlan needs --ovs (a Linux bridge port carries no libvirt VLAN tag)")
    if vlan is not None and not 1 <= vlan <= 4094:
        raise ValueError("--vlan %d is not a VLAN id (1-4094)" % vlan)
    if not _BRIDGE.match(bridge or ovs):
        raise ValueError("bridge name %r is not an interface name" % (bridge or ovs))
    if not disks:
        raise ValueError("give at least one --disk")
    for path in disks:
        if not os.path.isabs(path):
            raise ValueError("disk %s: give an absolute path" % path)
    if len(set(disks)) != len(disks):
        raise ValueError("the same disk is given twice")
    for label, path in (("--console-log", console_log), ("--kernel", kernel), ("--initrd", initrd)):
        if path is not None and not os.path.isabs(path):
            raise ValueError("%s %s: give an absolute path" % (label, path))
    if (initrd or cmdline) and not kernel:
        raise ValueError("--initrd and --cmdline need --kernel")
    mac = derived_mac(name) if mac in (None, "auto") else normalise_mac(mac)
    kinds = kinds or {}

    root = ET.Element("domain", {"type": domain_type})
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "uuid").text = derived_uuid(name)
    ET.SubElement(root, "memory", {"unit": "MiB"}).text = str(memory_mib)
    ET.SubElement(root, "currentMemory", {"unit": "MiB"}).text = str(memory_mib)
    ET.SubElement(root, "vcpu", {"placement": "static"}).text = str(cpus)
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type", {"machine": machine} if machine else {}).text = "hvm"
    if kernel:
        ET.SubElement(os_el, "kernel").text = kernel
        if initrd:
            ET.SubElement(os_el, "initrd").text = initrd
        if cmdline:
            ET.SubElement(os_el, "cmdline").text = cmdline
    else:
        ET.SubElement(os_el, "boot", {"dev": "hd"})
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    # poweroff/crash inside the guest: the domain goes away and the cluster's monitor sees it (and recovers)
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        ET.SubElement(root, event).text = action
    dev = ET.SubElement(root, "devices")
    for index, path in enumerate(disks):
        kind = kinds.get(path) or disk_kind(path)
        disk = ET.SubElement(dev, "disk", {"type": kind, "device": "disk"})
        driver = {"name": "qemu", "type": "raw", "cache": "none"}  # cache=none: safe for live migration
        if kind == "block":
            driver["io"] = "native"
        ET.SubElement(disk, "driver", driver)
        ET.SubElement(disk, "source", {"dev" if kind == "block" else "file": path})
        ET.SubElement(disk, "target", {"dev": target_dev(index), "bus": "virtio"})
    iface = ET.SubElement(dev, "interface", {"type": "bridge"})
    ET.SubElement(iface, "mac", {"address": mac})
    ET.SubElement(iface, "source", {"bridge": bridge or ovs})
    if ovs:
        ET.SubElement(iface, "virtualport", {"type": "openvswitch"})
        if vlan is not None:
            ET.SubElement(ET.SubElement(iface, "vlan"), "tag", {"id": str(vlan)})
    ET.SubElement(iface, "model", {"type": "virtio"})
    channel = ET.SubElement(dev, "channel", {"type": "unix"})
    ET.SubElement(channel, "target", {"type": "virtio", "name": "startup_signal"})
    if graphics == "vnc":
        ET.SubElement(dev, "graphics", {"type": "vnc", "port": "-1", "autoport": "yes", "listen": "127.0.0.1"})
    ET.SubElement(dev, "memballoon", {"model": "virtio"})
    cfg = DomainConfig(ET.tostring(root, encoding="unicode"))
    if console_log:
        cfg.set_console_log(console_log)  # the very device the agent's console_log parameter writes
    else:
        serial = ET.SubElement(cfg.devices(), "serial", {"type": "pty"})
        ET.SubElement(serial, "target", {"port": "0"})
        console = ET.SubElement(cfg.devices(), "console", {"type": "pty"})
        ET.SubElement(console, "target", {"type": "serial", "port": "0"})
    ET.indent(cfg.root, "  ")
    return cfg.tostring() + "\n"


def check(text):
    """None when libvirt's schema accepts the text; raises CliError(BAD_XML) when it refuses it; a warning on
    stderr when there is no schema here to judge by."""
    from pyra.backends import libvirt_schema
    try:
        problem = libvirt_schema.check(text.encode("utf-8"))
    except libvirt_schema.SchemaUnavailable as err:
        sys.stderr.write("pyra: warning: not checked against libvirt's schema: %s\n" % err)
        return
    if problem:
        raise CliError("create-domxml made XML that libvirt's schema refuses (a bug of pyra): %s" % problem,
                       BAD_XML)


# -- the command ----------------------------------------------------------------------------------------------
def _positive(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %s" % text)
    return value


def _size(text):
    import argparse
    try:
        return parse_size_mib(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _mac(text):
    import argparse
    if text == "auto":
        return text
    try:
        return normalise_mac(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _vlan(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a VLAN id" % text) from None
    if not 1 <= value <= 4094:
        raise argparse.ArgumentTypeError("%s is not a VLAN id (1-4094)" % text)
    return value


def register(subparsers):
    p = subparsers.add_parser(
        "create-domxml", help="write a domain XML that pyra's TransientDomain can run",
        description="Write a domain XML for ocf:pyra:TransientDomain to stdout (or --output): virtio disks and "
        "NIC, the startup_signal channel, a serial console, a VNC display on 127.0.0.1, and a UUID and MAC "
        "derived from the name (the same on every node and every run). The XML is checked against libvirt's "
        "schema before it is written.",
        epilog="example: pyra create-domxml --name gum --cpus 16 --mem 8g --ovs vh --vlan 150 "
        "--disk /dev/vm/gum /dev/data/gum > /etc/pyra/gum.xml")
    p.add_argument("--name", required=True, help="domain name (also the default resource id of domadd)")
    p.add_argument("--cpus", required=True, type=_positive, metavar="N", help="virtual CPUs")
    p.add_argument("--mem", required=True, type=_size, metavar="SIZE",
                   help="memory: 512m, 8g, 1024 (no unit: MiB)")
    p.add_argument("--disk", required=True, nargs="+", action="extend", metavar="PATH",
                   help="disk images or block devices (LVs), in order: vda, vdb, ...; repeatable")
    net = p.add_mutually_exclusive_group(required=True)
    net.add_argument("--bridge", metavar="BR", help="Linux bridge of the NIC")
    net.add_argument("--ovs", metavar="BR", help="Open vSwitch bridge of the NIC")
    p.add_argument("--vlan", type=_vlan, metavar="N", help="VLAN tag of the OVS port (with --ovs)")
    p.add_argument("--mac", type=_mac, default="auto", metavar="auto|MAC",
                   help="NIC MAC address (default auto: 52:54:00:xx:xx:xx from the name)")
    p.add_argument("--console-log", metavar="PATH",
                   help="serial console to this file, appended (default: a pty, for `pyra vm NAME console`)")
    p.add_argument("--machine", metavar="M", help="QEMU machine type (pc, q35, ...; default: libvirt's)")
    p.add_argument("--type", dest="domain_type", choices=("kvm", "qemu"), default="kvm",
                   help="kvm (hardware virtualization, default) or qemu (software emulation)")
    p.add_argument("--graphics", choices=("vnc", "none"), default="vnc",
                   help="a VNC display on 127.0.0.1 (default) or none")
    p.add_argument("--kernel", metavar="PATH", help="direct kernel boot: the kernel (default: boot from vda)")
    p.add_argument("--initrd", metavar="PATH", help="direct kernel boot: the initrd")
    p.add_argument("--cmdline", metavar="TEXT", help="direct kernel boot: the kernel command line")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.set_defaults(func=run)
    return p


def run(args):
    if args.vlan is not None and not args.ovs:
        raise CliError("--vlan needs --ovs (a Linux bridge port carries no libvirt VLAN tag)", USAGE)
    try:
        text = build(args.name, args.cpus, args.mem, args.disk, bridge=args.bridge, ovs=args.ovs, vlan=args.vlan,
                     mac=args.mac, console_log=args.console_log, machine=args.machine,
                     domain_type=args.domain_type, graphics=args.graphics, kernel=args.kernel,
                     initrd=args.initrd, cmdline=args.cmdline)
    except ValueError as err:
        raise CliError(str(err), USAGE) from None
    check(text)
    if not args.output:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    tmp = "%s.%d.tmp" % (args.output, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, args.output)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CliError("cannot write %s: %s" % (args.output, err.strerror), FAILED) from None
    return 0
