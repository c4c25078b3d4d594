"""The monitor's libvirt-free state query (pyra.backends.libvirt_wire) against a real libvirtd and QEMU guest:
it agrees with libvirt-python on every state the monitor judges, and the recurring monitor on a node never
loads libvirt."""

import subprocess
import uuid as uuidlib

import pytest

import harness
from pyra.backends import libvirt_codes as lc
from pyra.backends import libvirt_wire as wire

pytestmark = [pytest.mark.root, pytest.mark.qemu]


def _both(node, uuid):
    """(libvirt-python's answer, the wire's answer) for ``uuid`` on ``node``."""
    import libvirt
    conn = node.conn()
    try:
        try:
            theirs = tuple(conn.lookupByUUIDString(uuid).state())
        except libvirt.libvirtError as err:
            assert err.get_error_code() == lc.ERR_NO_DOMAIN, err
            theirs = None
    finally:
        conn.close()
    return theirs, wire.domain_state(node.uri, uuid, 10)


def test_wire_agrees_with_libvirt_python(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert _both(node, g["uuid"]) == (None, None)                           # not there yet
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    theirs, ours = _both(node, g["uuid"])
    assert ours == theirs and ours[0] == lc.RUNNING
    conn = node.conn()
    try:
        conn.lookupByUUIDString(g["uuid"]).suspend()
        theirs, ours = _both(node, g["uuid"])
        assert ours == theirs == (lc.PAUSED, lc.PAUSED_USER)
        r = guests.run(node, "monitor", p, rsctmp1, interval=10000)
        assert r.rc == 190 and "paused by an administrator" in r.exit_reason, r
        conn.lookupByUUIDString(g["uuid"]).resume()
    finally:
        conn.close()
    theirs, ours = _both(node, g["uuid"])
    assert ours == theirs and ours[0] == lc.RUNNING
    assert _both(node, str(uuidlib.uuid4())) == (None, None)                 # an unknown UUID
    assert guests.run(node, "stop", p, rsctmp1).rc == 0
    assert _both(node, g["uuid"]) == (None, None)                           # a stopped transient domain


def test_recurring_monitor_on_a_node_does_not_load_libvirt(node, guests, rsctmp1):
    """On the node (qemu:///system resolves to its daemon's socket as libvirt's client would), the 10 s monitor
    answers without the ~18 ms libvirt-python import; the deep monitor still uses libvirt."""
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    try:
        def imports(check_level=None):
            env = harness.agent_env(harness.agent_path("TransientDomain"), p, interval=10000, rsctmp=rsctmp1,
                                    instance="td-guest", check_level=check_level)
            argv = node.ns_prefix() + ["/usr/bin/python3", "-S", "-X", "importtime",
                                       harness.agent_path("TransientDomain"), "monitor"]
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            return proc.returncode, proc.stderr
        rc, trace = imports()
        assert rc == 0, trace[-2000:]
        assert "libvirt_wire" in trace and "libvirtmod" not in trace
        rc, trace = imports(check_level=10)
        assert rc == 0, trace[-2000:]
        assert "libvirtmod" in trace
    finally:
        assert guests.run(node, "stop", p, rsctmp1).rc == 0
