"""What a node must offer a TransientDomain guest before it runs there: its libvirt accepts the XML (libvirt's
own schema, checked only when the file changed), and every disk source and bridge the XML names exists.
Missing means "this node cannot run it" (5 from start: Pacemaker places the guest elsewhere at once).
"""

import os

from pyra.ocf.errors import ConfigError, MissingEnvironment


def check_node(op, cfg):
    """Every disk source and bridge (Linux or Open vSwitch) the guest needs exists on this node; else this
    node cannot run it (MissingEnvironment: 5 from start, so Pacemaker places it elsewhere at once)."""
    for kind, path in cfg.disk_sources():
        if not os.path.exists(path):
            raise MissingEnvironment("%s %s of %s does not exist on this node" % (kind, path, cfg.name))
    for kind, name in cfg.networks():
        if kind in ("bridge", "ovs") and not os.path.isdir("/sys/class/net/" + name):
            if kind == "ovs" and op.run(["ovs-vsctl", "--timeout=5", "br-exists", name], timeout=10).ok:
                continue
            what = "Open vSwitch bridge" if kind == "ovs" else "bridge"
            raise MissingEnvironment("%s %s of %s does not exist on this node" % (what, name, cfg.name))


def check_schema(op, name):
    """The XML against this node's libvirt schema, when the file (or the schema) changed since it last
    passed here. A file libvirt refuses fails validate-all (6, with libvirt's words) and a start with 5:
    another node's libvirt (a rolling upgrade) may accept it."""
    from pyra.backends import libvirt_schema
    path = op.params.config
    stamp = libvirt_schema.stamp(path)
    passed = op.state.sidecar("schema")
    if stamp is not None and passed.read().get("passed") == stamp:
        return
    try:
        with open(path, "rb") as handle:
            problem = libvirt_schema.check(handle.read())
    except (OSError, libvirt_schema.SchemaUnavailable) as err:
        op.log.info("libvirt schema check skipped: %s", err)
        return
    if problem:
        error = ConfigError if op.action == "validate-all" else MissingEnvironment
        raise error("%s: libvirt's schema refuses it: %s" % (os.path.basename(path), problem))
    if stamp is not None:
        passed.write({"passed": stamp})
    op.log.debug("%s passed libvirt's schema", name)
