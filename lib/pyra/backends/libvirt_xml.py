"""The domain XML: what TransientDomain reads from it and the few edits it makes before creating the guest.

Owns parsing with the standard library's ElementTree (never lxml: import cost), the table of fields pyra reads
(``FIELDS``: identity, vCPUs, memory), the startup_signal channel, the resources a node must have (disk
sources, networks, bridges), the utilization (vCPUs, memory), the console-log rewrite and the URI templates
for migration. Pure functions: unit-tested without libvirt.
"""

import string
import xml.etree.ElementTree as ET

STARTUP_CHANNEL = "startup_signal"


class DomainXMLError(ValueError):
    """The XML is not a usable domain definition (syntax, missing name...)."""


def _name(el):
    name = (el.text or "").strip()
    if "/" in name or name.startswith(".") or any(c in name for c in "\n\r\0"):
        raise DomainXMLError("domain name %r is not usable" % name)
    return name


_HEX = frozenset(string.hexdigits)


def _uuid_text(el):
    """The canonical (lower-case, dashed) form of a <uuid>; accepts what uuid.UUID accepts (dashes, braces,
    urn:uuid:) without importing the uuid module, ~10 ms of every agent run that parses the XML."""
    raw = (el.text or "").strip()
    digits = raw.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    if len(digits) != 32 or not _HEX.issuperset(digits):
        raise DomainXMLError("<uuid> %r is not a UUID" % raw)
    return "%s-%s-%s-%s-%s" % (digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:])


def _positive_int(el):
    return max(1, int((el.text or "").strip()))


_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1 << 20, "mib": 1 << 20, "mb": 10 ** 6,
          "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9, "t": 1 << 40, "tib": 1 << 40, "tb": 10 ** 12,
          "p": 1 << 50, "pib": 1 << 50, "pb": 10 ** 15, "e": 1 << 60, "eib": 1 << 60, "eb": 10 ** 18}


def _mib(el):
    """A libvirt memory size (``unit`` attribute, KiB by default) in MiB; a unit libvirt does not know either
    gives no memory utilization rather than a wrong one."""
    factor = _UNITS.get((el.get("unit") or "KiB").lower())
    if factor is None:
        raise ValueError("unknown unit")
    return int(int((el.text or "").strip()) * factor // (1 << 20))


class Field:
    """One value pyra reads from the domain XML: the first of ``paths`` present with text, through
    ``convert`` (ValueError: the default applies; DomainXMLError: the XML is refused), else ``default``."""

    __slots__ = ("paths", "convert", "default")

    def __init__(self, paths, convert, default):
        self.paths = (paths,) if isinstance(paths, str) else tuple(paths)
        self.convert = convert
        self.default = default

    def read(self, root):
        for path in self.paths:
            el = root.find(path)
            if el is not None and (el.text or "").strip():
                try:
                    return self.convert(el)
                except DomainXMLError:
                    raise
                except ValueError:
                    return self.default
        return self.default


# Everything pyra reads from a domain XML besides its devices.
FIELDS = {
    "name": Field("name", _name, ""),
    "uuid": Field("uuid", _uuid_text, None),
    "vcpus": Field("vcpu", _positive_int, 1),
    # the most a (ballooned) guest can use, as VirtualDomain's hv_memory and libvirt's maxMemory report it
    "memory_mib": Field(("memory", "currentMemory"), _mib, 0),
}


class DomainConfig:
    """A parsed domain XML."""

    def __init__(self, text):
        refuse_dtd(text)
        try:
            self.root = ET.fromstring(text)
        except ET.ParseError as err:
            raise DomainXMLError("not well-formed XML: %s" % err) from None
        if self.root.tag != "domain":
            raise DomainXMLError("root element is <%s>, not <domain>" % self.root.tag)
        self.name = FIELDS["name"].read(self.root)
        if not self.name:
            raise DomainXMLError("no <name> in the domain XML")
        self.type = self.root.get("type", "")   # the driver: kvm, qemu, lxc, xen...
        self.uuid = FIELDS["uuid"].read(self.root)
        self.uuid_given = self.uuid is not None
        if self.uuid is None:
            # a stable identity without one in the file: the same on every node, derived from the name
            import uuid
            self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "pyra:TransientDomain:" + self.name))
            el = ET.Element("uuid")
            el.text = self.uuid
            self.root.insert(1, el)

    @classmethod
    def from_file(cls, path):
        with open(path, "rb") as handle:
            data = handle.read()
        return cls(data)

    def devices(self):
        dev = self.root.find("devices")
        if dev is None:
            dev = ET.SubElement(self.root, "devices")
        return dev

    def has_startup_channel(self):
        return channel_path(self.root, STARTUP_CHANNEL, need_path=False) is not None

    def vcpus(self):
        return FIELDS["vcpus"].read(self.root)

    def memory_mib(self):
        return FIELDS["memory_mib"].read(self.root)

    def disk_sources(self):
        """(kind, path) of every disk/filesystem source that must exist on the node: file, block, dir. Network
        disks (rbd, iscsi, nbd: <source protocol=... name=...>) and pool volumes name no local path."""
        out = []
        for disk in self.devices().iter("disk"):
            src = disk.find("source")
            if src is None:
                continue
            for attr, kind in (("file", "file"), ("dev", "block"), ("dir", "dir")):
                if src.get(attr):
                    out.append((kind, src.get(attr)))
        for tag in ("kernel", "initrd"):
            text = (self.root.findtext("os/" + tag) or "").strip()
            if text:
                out.append(("file", text))
        return out

    def networks(self):
        """(kind, name) of every interface: ('network', libvirt network), ('bridge', Linux bridge) or ('ovs',
        Open vSwitch bridge: a bridge interface with <virtualport type='openvswitch'/>)."""
        out = []
        for iface in self.devices().iter("interface"):
            src = iface.find("source")
            kind = iface.get("type")
            if src is None:
                continue
            if kind == "network" and src.get("network"):
                out.append(("network", src.get("network")))
            elif kind == "bridge" and src.get("bridge"):
                port = iface.find("virtualport")
                ovs = port is not None and port.get("type") == "openvswitch"
                out.append(("ovs" if ovs else "bridge", src.get("bridge")))
        return out

    def set_console_log(self, path):
        """Send the serial console to ``path``, appended (so it survives restarts and migrations). Only the
        device this adds is touched: the first serial port (port 0, or the first without a port) and the
        console that mirrors it; other serial ports and consoles (virtio) stay as they are."""
        dev = self.devices()
        for el in dev.findall("serial"):
            port = el.find("target").get("port") if el.find("target") is not None else None
            if port in (None, "0"):
                dev.remove(el)
                break
        for el in dev.findall("console"):
            target = el.find("target")
            if target is None or target.get("type", "serial") == "serial":
                dev.remove(el)
                break
        for tag, target in (("serial", {"port": "0"}), ("console", {"type": "serial", "port": "0"})):
            el = ET.SubElement(dev, tag, {"type": "file"})
            ET.SubElement(el, "source", {"path": path, "append": "on"})
            ET.SubElement(el, "target", target)

    def tostring(self):
        return ET.tostring(self.root, encoding="unicode")


def refuse_dtd(text):
    """Refuse a document with a DOCTYPE (hence any ENTITY declaration) before ElementTree expands anything:
    libvirt never writes one, and entities are the way to billion laughs and external (SYSTEM) references.
    A streaming expat pass stops at the first declaration; syntax errors are left to the real parse."""
    import pyexpat

    def refuse(*_args):
        raise DomainXMLError("DTDs and entities are not allowed in a domain XML (it has a DOCTYPE/ENTITY)")
    parser = pyexpat.ParserCreate()
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    try:
        parser.Parse(text, True)
    except pyexpat.ExpatError:
        pass


def channel_path(root_or_text, name=STARTUP_CHANNEL, need_path=True):
    """The host-side unix socket path of the virtio-serial channel ``name`` (from the *live* XML: libvirt
    chooses it and it changes with the domain ID). With need_path=False: '' when the channel exists."""
    root = ET.fromstring(root_or_text) if isinstance(root_or_text, (str, bytes)) else root_or_text
    dev = root.find("devices")
    if dev is None:
        return None
    for ch in dev.findall("channel"):
        target = ch.find("target")
        if target is None or target.get("name") != name or target.get("type", "virtio") != "virtio":
            continue
        if ch.get("type") != "unix":
            continue
        src = ch.find("source")
        path = src.get("path") if src is not None else None
        if path:
            return path
        if not need_path:
            return ""
    return None


def expand_node(template, node, suffix=""):
    """Replace %n by the node name (with the network suffix inserted before its first dot, as VirtualDomain
    does: node1.example.com + '-mig' -> node1-mig.example.com); %% is a literal %."""
    host = node_with_suffix(node, suffix)
    out, i = [], 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template):
            nxt = template[i + 1]
            if nxt == "n":
                out.append(host)
                i += 2
                continue
            if nxt == "%":
                out.append("%")
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def node_with_suffix(node, suffix):
    if not suffix:
        return node
    head, dot, tail = node.partition(".")
    return head + suffix + dot + tail


def default_remote_uri(hypervisor, transport):
    """The target's libvirt URI from the local one: qemu:///system + tcp -> qemu+tcp://%n/system."""
    scheme, sep, rest = hypervisor.partition("://")
    if not sep:
        raise DomainXMLError("hypervisor URI %r has no scheme" % hypervisor)
    driver = scheme.split("+", 1)[0]
    path = rest.split("/", 1)[1] if "/" in rest else "system"
    path, _, _query = path.partition("?")  # a local socket= query makes no sense remotely
    return "%s+%s://%%n/%s" % (driver, transport, path)
