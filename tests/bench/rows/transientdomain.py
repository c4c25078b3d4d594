"""Bench row: ocf:pyra:TransientDomain monitor vs ocf:heartbeat:VirtualDomain monitor on the same running guest.

One private libvirtd (node td-bench, lab/rigs/libvirt_node.py) runs one real TCG guest started by pyra.
Both agents use the same hypervisor URI (the node's unix socket) and the same domain XML. A second comparison
puts pyra next to the floor any Python agent pays: a bare ``/usr/bin/python3`` that imports libvirt, opens the
connection, looks the domain up and queries its state. pyra's recurring monitor does not load libvirt-python
at all (pyra.backends.libvirt_wire speaks libvirt's RPC on the daemon's socket), so it is well under that floor.
Goals: <= 0.25x VirtualDomain (issue 13), <= 0.5x the bare query (a guard: it was 1.2x before the wire path).
"""

import contextlib
import os
import shutil
import sys

from bench.core import Command, Comparison

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

VIRTUALDOMAIN = "/usr/lib/ocf/resource.d/heartbeat/VirtualDomain"
RSCTMP = "/run/pyra-td/bench-rsctmp"
PY = "/usr/bin/python3"
BARE = ("import libvirt, sys\n"
        "libvirt.registerErrorHandler(lambda *a: None, None)\n"
        "c = libvirt.open(sys.argv[1])\n"
        "s = c.lookupByUUIDString(sys.argv[2]).state()\n"
        "sys.exit(0 if s[0] == libvirt.VIR_DOMAIN_RUNNING else 7)\n")


def _env(uri, config, instance, rtype="TransientDomain"):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_INSTANCE": instance, "OCF_RESOURCE_TYPE": rtype,
            "OCF_RESKEY_config": config, "OCF_RESKEY_hypervisor": uri, "OCF_RESKEY_CRM_meta_timeout": "30000",
            "OCF_RESKEY_CRM_meta_interval": "10000", "HA_RSCTMP": RSCTMP, "LC_ALL": "C"}


@contextlib.contextmanager
def comparisons():
    import uuid as uuidlib

    from harness import run_agent
    from lab.rigs import libvirt_node as L
    from lab.rigs.guest import build
    if not os.access(VIRTUALDOMAIN, os.X_OK):
        raise RuntimeError("%s is not installed (package resource-agents)" % VIRTUALDOMAIN)
    images = build.build()
    node = L.Node("td-bench").start()
    shutil.rmtree(RSCTMP, ignore_errors=True)
    os.makedirs(RSCTMP)
    name, dom_uuid = "tdbench", str(uuidlib.uuid4())
    xml_dir = L.WORK / "xml"
    xml_dir.mkdir(parents=True, exist_ok=True)
    config = str(xml_dir / "tdbench.xml")
    with open(config, "w") as handle:
        handle.write(L.guest_xml(name, images, dom_uuid, channel=False))
    pyra = os.path.join(REPO, "agents", "TransientDomain")
    try:
        a_env = _env(node.uri, config, "bench-td")
        started = run_agent("TransientDomain", "start", {"config": config, "hypervisor": node.uri},
                            rsctmp=RSCTMP, instance="bench-td", timeout_ms=60000)
        if started.rc != 0:
            raise RuntimeError("TransientDomain start failed: %r" % (started,))
        b_env = _env(node.uri, config, "bench-vd", "VirtualDomain")
        yield [
            Comparison("TransientDomain monitor (running guest)", Command([pyra, "monitor"], a_env),
                       Command([VIRTUALDOMAIN, "monitor"], b_env), goal=0.25, label_b="VirtualDomain"),
            Comparison("TransientDomain monitor vs bare python3+libvirt state query",
                       Command([pyra, "monitor"], a_env),
                       Command([PY, "-c", BARE, node.uri, dom_uuid], a_env), goal=0.5, label_b="bare query"),
        ]
    finally:
        run_agent("TransientDomain", "stop", {"config": config, "hypervisor": node.uri, "force_stop": "1"},
                  rsctmp=RSCTMP, instance="bench-td", timeout_ms=30000)
        node.stop()
        shutil.rmtree(RSCTMP, ignore_errors=True)
