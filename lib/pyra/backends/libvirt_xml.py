"""The domain XML: what TransientDomain reads from it and the few edits it makes before creating the guest.

Owns parsing with the standard library's ElementTree (never lxml: import cost), the identity (name, UUID), the
startup_signal channel, the resources a node must have (disk sources, networks, bridges), the utilization
(vCPUs, memory), the console-log rewrite and the URI templates for migration. Pure functions: unit-tested
without libvirt.
"""

import uuid as _uuid
import xml.etree.ElementTree as ET

STARTUP_CHANNEL = "startup_signal"


class DomainXMLError(ValueError):
    """The XML is not a usable domain definition (syntax, missing name...)."""


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
        self.name = (self.root.findtext("name") or "").strip()
        if not self.name:
            raise DomainXMLError("no <name> in the domain XML")
        if "/" in self.name or self.name.startswith(".") or any(c in self.name for c in "\n\r\0"):
            raise DomainXMLError("domain name %r is not usable" % self.name)
        raw_uuid = (self.root.findtext("uuid") or "").strip()
        if raw_uuid:
            try:
                self.uuid = str(_uuid.UUID(raw_uuid))
            except ValueError:
                raise DomainXMLError("<uuid> %r is not a UUID" % raw_uuid) from None
            self.uuid_given = True
        else:
            # a stable identity without one in the file: the same on every node, derived from the name
            self.uuid = str(_uuid.uuid5(_uuid.NAMESPACE_URL, "pyra:TransientDomain:" + self.name))
            self.uuid_given = False
            el = ET.Element("uuid")
            el.text = self.uuid
            self.root.insert(1, el)
        self.type = self.root.get("type", "")

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
        text = (self.root.findtext("vcpu") or "1").strip()
        try:
            return max(1, int(text))
        except ValueError:
            return 1

    def memory_mib(self):
        el = self.root.find("currentMemory")
        if el is None:
            el = self.root.find("memory")
        if el is None or not (el.text or "").strip():
            return 0
        unit = (el.get("unit") or "KiB").lower()
        factor = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1 << 20, "mib": 1 << 20,
                  "mb": 10 ** 6, "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9, "t": 1 << 40, "tib": 1 << 40,
                  "tb": 10 ** 12, "p": 1 << 50, "pib": 1 << 50, "pb": 10 ** 15, "e": 1 << 60, "eib": 1 << 60,
                  "eb": 10 ** 18}.get(unit)
        if factor is None:
            return 0  # a unit libvirt does not know either: no memory utilization rather than a wrong one
        return int(int(el.text.strip()) * factor // (1 << 20))

    def disk_sources(self):
        """(kind, path) of every disk/filesystem source that must exist on the node: file, block, dir."""
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
        """(kind, name): ('network', libvirt network) or ('bridge', host bridge) of every interface."""
        out = []
        for iface in self.devices().iter("interface"):
            src = iface.find("source")
            kind = iface.get("type")
            if src is None:
                continue
            if kind == "network" and src.get("network"):
                out.append(("network", src.get("network")))
            elif kind == "bridge" and src.get("bridge"):
                out.append(("bridge", src.get("bridge")))
        return out

    def set_console_log(self, path):
        """Send the serial console to ``path``, appended (so it survives restarts and migrations)."""
        dev = self.devices()
        for tag in ("serial", "console"):
            for el in list(dev.findall(tag)):
                dev.remove(el)
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
