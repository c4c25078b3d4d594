"""TransientDomain when libvirtd is stopped or hung: monitor and stop stay bounded and truthful."""

import time

import pytest

from lab.rigs import libvirt_node as L

pytestmark = [pytest.mark.root, pytest.mark.qemu]


def test_libvirtd_stopped(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    node.stop_daemon()
    try:
        assert L.qemu_pids(g["uuid"])                                   # the guest outlives libvirtd
        r = guests.run(node, "monitor", p, rsctmp1, interval=10000, timeout_ms=10000)
        assert r.rc == 190 and "libvirtd" in r.exit_reason, r          # running, but unmanageable
        assert r.elapsed < 3.0, r
        r = guests.run(node, "monitor", p, rsctmp1, timeout_ms=10000)  # probe: the emulator runs => 0
        assert r.rc == 0, r
        r = guests.run(node, "stop", p, rsctmp1, timeout_ms=10000)
        assert r.rc == 0 and not r.killed and r.elapsed < 10.0, r
        assert not L.qemu_pids(g["uuid"])                               # really stopped
        assert guests.run(node, "monitor", p, rsctmp1, interval=10000, timeout_ms=10000).rc == 7
    finally:
        node.start()
    assert node.state(g["name"]) is None


def test_libvirtd_hung(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    pid = node.freeze_daemon()
    try:
        t = time.monotonic()
        r = guests.run(node, "monitor", p, rsctmp1, interval=10000, timeout_ms=6000)
        assert not r.killed and r.elapsed < 6.0, r                      # bounded by the op timeout
        assert r.rc == 190, r
        r = guests.run(node, "stop", p, rsctmp1, timeout_ms=12000)
        assert r.rc == 0 and not r.killed and r.elapsed < 12.0, r
        assert not L.qemu_pids(g["uuid"])
        assert time.monotonic() - t < 20
    finally:
        node.thaw_daemon(pid)
    assert L.wait_gone(node, g["name"], 10)
    r = guests.run(node, "monitor", p, rsctmp1, interval=10000)
    assert r.rc == 7, r
