"""The CIB fragment of ``pyra domadd``: domain XML in, one ``<primitive>`` or ``<group>`` element out. Pure: no
file, no command, no cluster (unit-tested with golden files).

The guest is an ``ocf:pyra:TransientDomain`` primitive: ``config`` (the XML's absolute path), ``hypervisor``
(the agent's default, lxc:///system for a libvirt-LXC domain), one operation per action the agent declares
(``all_actions()``: its own timeouts, intervals and OCF_CHECK_LEVEL; meta-data, validate-all and reloads are
not operations), ``allow-migrate=true`` (not for LXC, which cannot migrate; then no migrate_* operations
either), and ``cpu``/``memory`` utilization from the XML. With disk groups, every disk whose source is an LV
named by its path (/dev/VG/LV or /dev/mapper/VG-LV, LVM's '--' escapes undone) gets an
``ocf:pyra:LVMFilesystem`` resource that activates it raw (no directory), and they and the guest form the
group ``g-<id>``, the LVs first.
"""

import os
import re
import xml.etree.ElementTree as ET

from pyra.cli.clusterstate import nvpairs

NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # an XML ID, as the CIB's schema wants
NOT_OPERATIONS = ("meta-data", "validate-all", "reload", "reload-agent")
MIGRATE_ACTIONS = ("migrate_to", "migrate_from")


class Refused(ValueError):
    """What the builder will not make; ``code`` names the exit code (a pyra.cli.main constant name)."""

    def __init__(self, message, code="FAILED"):
        super().__init__(message)
        self.code = code


def lv_of_path(path):
    """(vg, lv) when ``path`` names a logical volume by one of LVM's device paths, else None."""
    path = os.path.normpath(path or "")
    parts = path.split("/")
    if len(parts) == 4 and parts[:2] == ["", "dev"] and parts[2] == "mapper":
        name = parts[3]
        # VG-LV with every '-' inside a name doubled; the separator is the first single '-'
        i = 0
        while i < len(name):
            if name[i] == "-":
                if name[i + 1:i + 2] == "-":
                    i += 2
                    continue
                vg, lv = name[:i].replace("--", "-"), name[i + 1:].replace("--", "-")
                if vg and lv and not lv.startswith("-"):
                    return vg, lv
                return None
            i += 1
        return None
    if len(parts) == 4 and parts[:2] == ["", "dev"] and parts[2] and parts[3]:
        if parts[2] in ("disk", "block", "mapper", "md", "cciss", "pts", "shm", "net", "bus", "input", "snd",
                        "cpu", "fd", "hugepages", "mqueue", "dri", "char", "vfio", "zvol", "rbd", "nbd"):
            return None
        return parts[2], parts[3]
    return None


def _nvset(parent, tag, owner_id, pairs, suffix=None):
    set_id = "%s-%s" % (owner_id, suffix or tag)
    el = ET.SubElement(parent, tag, {"id": set_id})
    for name, value in pairs:
        ET.SubElement(el, "nvpair", {"id": "%s-%s" % (set_id, name), "name": name, "value": str(value)})
    return el


def _seconds(value):
    value = float(value)
    return "%ds" % value if value == int(value) else "%gs" % value


def operations(parent, rsc_id, actions, skip=()):
    """One <op> per declared action (monitors by interval, with OCF_CHECK_LEVEL for deeper ones)."""
    ops = ET.SubElement(parent, "operations")
    for action in actions:
        if action.name in NOT_OPERATIONS or action.name in skip:
            continue
        interval = _seconds(action.interval or 0)
        op_id = "%s-%s-interval-%s" % (rsc_id, action.name, interval)
        attrs = {"id": op_id, "name": action.name, "interval": interval, "timeout": _seconds(action.timeout)}
        if action.role:
            attrs["role"] = action.role
        op = ET.SubElement(ops, "op", attrs)
        if action.name == "monitor" and action.depth:
            _nvset(op, "instance_attributes", op_id, [("OCF_CHECK_LEVEL", action.depth)])
    return ops


def primitive(parent, rsc_id, agent, params, actions, meta=(), utilization=(), skip_actions=()):
    el = ET.SubElement(parent, "primitive", {"id": rsc_id, "class": "ocf", "provider": "pyra", "type": agent})
    _nvset(el, "instance_attributes", rsc_id, params)
    if meta:
        _nvset(el, "meta_attributes", rsc_id, meta)
    if utilization:
        _nvset(el, "utilization", rsc_id, utilization)
    operations(el, rsc_id, actions, skip_actions)
    return el


class Plan:
    """What domadd will add: ``element`` (the <primitive> or <group> to create in <resources>), ``guest_id``,
    ``group_id`` (None without a group), ``disk_ids`` ({resource id: (vg, lv)}), ``ids`` (every id it uses)."""

    def __init__(self, element, guest_id, group_id, disk_ids):
        self.element = element
        self.guest_id = guest_id
        self.group_id = group_id
        self.disk_ids = disk_ids
        self.ids = {el.get("id") for el in element.iter() if el.get("id")}

    def tostring(self):
        copy = ET.fromstring(ET.tostring(self.element))
        ET.indent(copy, "  ")
        return ET.tostring(copy, encoding="unicode") + "\n"


def build(config, config_path, guest_actions, disk_actions=(), resource_id=None, disk_group="auto",
          hypervisor_default="qemu:///system", vg_access_mode=None):
    """The Plan for a parsed domain XML (pyra.backends.libvirt_xml.DomainConfig) at ``config_path``.

    ``guest_actions``/``disk_actions``: the agents' declared actions (``Agent.all_actions()``)."""
    if not os.path.isabs(config_path):
        raise Refused("the domain XML path %s is not absolute" % config_path, "USAGE")
    rsc_id = resource_id or config.name
    if not NCNAME.match(rsc_id):
        raise Refused("%r is not a usable resource id (letters, digits, '_', '.', '-', starting with a letter "
                      "or '_'): give one with --id" % rsc_id, "USAGE")
    lxc = config.type == "lxc"
    params = [("config", config_path), ("hypervisor", "lxc:///system" if lxc else hypervisor_default)]
    meta = [] if lxc else [("allow-migrate", "true")]
    util = [("cpu", config.vcpus())]
    if config.memory_mib():
        util.append(("memory", config.memory_mib()))
    disks = []
    if disk_group == "auto":
        seen = set()
        for disk in config.devices().iter("disk"):
            src, target = disk.find("source"), disk.find("target")
            path = src.get("dev") or src.get("file") if src is not None else None
            lv = lv_of_path(path) if path else None
            if lv is None or lv in seen:
                continue
            seen.add(lv)
            dev = target.get("dev") if target is not None and target.get("dev") else "disk%d" % len(disks)
            disks.append(("%s-%s" % (rsc_id, dev), lv))
    elif disk_group != "none":
        raise Refused("--disk-group is auto or none, not %r" % disk_group, "USAGE")
    holder = ET.Element("resources")
    group_id = None
    if disks:
        group_id = "g-" + rsc_id
        holder = ET.SubElement(holder, "group", {"id": group_id})
        for disk_id, (vg, lv) in disks:
            disk_params = [("vgname", vg), ("lvname", lv)]
            if vg_access_mode:
                disk_params.append(("vg_access_mode", vg_access_mode))
            primitive(holder, disk_id, "LVMFilesystem", disk_params, disk_actions)
    guest = primitive(holder, rsc_id, "TransientDomain", params, guest_actions, meta, util,
                      MIGRATE_ACTIONS if lxc else ())
    element = holder if group_id else guest
    return Plan(element, rsc_id, group_id, dict(disks))


def resource_agent(el):
    """'ocf:pyra:TransientDomain' for a <primitive>, 'group' / 'clone' ... for the others."""
    if el.tag == "primitive":
        return ":".join(x for x in (el.get("class"), el.get("provider"), el.get("type")) if x)
    return el.tag


def conflicts(cib_root, plan, config_path):
    """Raise Refused when the plan cannot go into this CIB: an id it would create exists (anywhere in the
    configuration: ids are unique there; the status section repeats resource ids in its own elements), or
    another TransientDomain already runs this XML."""
    config = cib_root.find("configuration")
    config = cib_root if config is None else config
    by_id = {el.get("id"): el for el in config.iter() if el.get("id")}
    resources = cib_root.find("configuration/resources")
    for rsc_id in [plan.guest_id] + ([plan.group_id] if plan.group_id else []) + sorted(plan.disk_ids):
        el = by_id.get(rsc_id)
        if el is None:
            continue
        if resources is not None and el in list(resources.iter()) and el.tag in ("primitive", "group", "clone",
                                                                                   "master", "bundle"):
            agent = resource_agent(el)
            if el.tag == "primitive" and el.get("provider") != "pyra":
                raise Refused("%s already exists and is not a pyra resource (%s)" % (rsc_id, agent), "NOT_PYRA")
            raise Refused("resource %s already exists (%s); remove it first or give another --id"
                          % (rsc_id, agent))
        raise Refused("the id %s is already used in the CIB (by a <%s>); give another --id" % (rsc_id, el.tag))
    for other in plan.ids - set([plan.guest_id, plan.group_id]) - set(plan.disk_ids):
        if other in by_id:
            raise Refused("the id %s is already used in the CIB (by a <%s>); give another --id"
                          % (other, by_id[other].tag))
    if resources is not None:
        for prim in resources.iter("primitive"):
            if prim.get("provider") != "pyra" or prim.get("type") != "TransientDomain":
                continue
            if nvpairs(prim, "instance_attributes").get("config") == config_path:
                raise Refused("%s is already the config of resource %s" % (config_path, prim.get("id")))
        for prim in resources.iter("primitive"):
            if prim.get("provider") == "pyra" and prim.get("type") == "LVMFilesystem":
                params = nvpairs(prim, "instance_attributes")
                for disk_id, (vg, lv) in plan.disk_ids.items():
                    if params.get("vgname") == vg and params.get("lvname") == lv:
                        raise Refused("LV %s/%s (disk %s) is already managed by resource %s"
                                      % (vg, lv, disk_id, prim.get("id")))
