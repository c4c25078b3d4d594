"""TransientDomain against real QEMU guests (software emulation) on a private libvirtd: start/stop/monitor."""

import os
import signal

import pytest

from lab.rigs import libvirt_node as L

pytestmark = [pytest.mark.root, pytest.mark.qemu]


def gone(node, g):
    return node.state(g["name"]) is None and not L.qemu_pids(g["uuid"])


def test_start_monitor_stop(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "monitor", p, rsctmp1).rc == 7           # probe before start
    r = guests.run(node, "start", p, rsctmp1)
    assert r.rc == 0, r
    assert node.state(g["name"])[0] == 1                              # running
    assert "got ack" in g["console"].read_text()                      # the guest saw our ack
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(node, "monitor", p, rsctmp1, interval=60000, check_level=10).rc == 0
    assert guests.run(node, "monitor", p, rsctmp1).rc == 0            # probe
    persistent = node.conn().lookupByName(g["name"]).isPersistent()
    assert persistent == 0                                            # transient, never defined
    r = guests.run(node, "stop", p, rsctmp1)
    assert r.rc == 0, r
    assert "ACPI power button" in g["console"].read_text() or "poweroff" in g["console"].read_text()
    assert gone(node, g)
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 7   # clean stop => 7


def test_start_twice_stop_twice(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"], "shutdown_mode": "acpi"}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    r = guests.run(node, "start", p, rsctmp1)
    assert r.rc == 0, r
    assert r.elapsed < 2.0                                            # already running: no second boot
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(node, "stop", p, rsctmp1).rc == 0
    assert guests.run(node, "stop", p, rsctmp1).rc == 0
    assert gone(node, g)
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 7


def test_guest_that_never_signals_fails_start_and_leaves_nothing(node, guests, rsctmp1):
    g = guests.xml(cmdline="td_silent")
    r = guests.run(node, "start", {"config": g["config"]}, rsctmp1, timeout_ms=12000)
    assert r.rc == 1, r
    assert not r.killed and r.elapsed < 12.0, r
    assert "ready" in r.exit_reason and "destroyed" in r.exit_reason, r
    assert gone(node, g)
    assert guests.run(node, "monitor", {"config": g["config"]}, rsctmp1, interval=10000).rc == 7


def test_startup_timeout_bounds_the_wait(node, guests, rsctmp1):
    g = guests.xml(cmdline="td_silent")
    r = guests.run(node, "start", {"config": g["config"], "startup_timeout": "3s"}, rsctmp1, timeout_ms=30000)
    assert r.rc == 1, r
    assert r.elapsed < 10.0, r
    assert gone(node, g)


def test_guest_ignoring_acpi_is_destroyed_before_the_deadline(node, guests, rsctmp1):
    g = guests.xml(cmdline="td_deaf")
    p = {"config": g["config"], "shutdown_mode": "acpi"}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    r = guests.run(node, "stop", p, rsctmp1, timeout_ms=10000)
    assert r.rc == 0, r
    assert not r.killed and 3.0 < r.elapsed < 10.0, r                 # waited for ACPI, then destroyed
    assert "ignoring the ACPI" in g["console"].read_text()
    assert gone(node, g)


def test_force_stop_destroys_at_once(node, guests, rsctmp1):
    g = guests.xml(cmdline="td_deaf")
    p = {"config": g["config"], "force_stop": "true"}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    r = guests.run(node, "stop", p, rsctmp1)
    assert r.rc == 0 and r.elapsed < 3.0, r
    assert gone(node, g)


def test_qemu_killed_means_monitor_failed(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    pids = L.qemu_pids(g["uuid"])
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    assert L.wait_gone(node, g["name"], 10)
    r = guests.run(node, "monitor", p, rsctmp1, interval=10000)
    assert r.rc == 1, r                                               # a crash, not a clean stop
    assert "failed" in r.exit_reason
    assert guests.run(node, "monitor", p, rsctmp1).rc == 7            # a probe says "not running"
    assert guests.run(node, "stop", p, rsctmp1).rc == 0
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 7


def test_persistent_domain_of_the_same_name_is_refused_and_untouched(node, guests, rsctmp1):
    g = guests.xml()
    c = node.conn()
    try:
        c.defineXML(open(g["config"]).read())
        r = guests.run(node, "start", {"config": g["config"]}, rsctmp1)
        assert r.rc == 5, r
        assert "persistent" in r.exit_reason
        d = c.lookupByName(g["name"])
        assert d.isPersistent() == 1 and d.isActive() == 0            # still defined, not started
        assert guests.run(node, "stop", {"config": g["config"]}, rsctmp1).rc == 0
        assert c.lookupByName(g["name"]).isPersistent() == 1          # stop never undefines it
    finally:
        try:
            c.lookupByName(g["name"]).undefine()
        finally:
            c.close()


def test_config_removed_while_running(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    os.unlink(g["config"])
    r = guests.run(node, "monitor", p, rsctmp1)                        # probe: the record still knows it
    assert r.rc == 0, r
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 0
    r = guests.run(node, "stop", p, rsctmp1)
    assert r.rc == 0, r
    assert gone(node, g)
    assert guests.run(node, "monitor", p, rsctmp1).rc == 7


def test_probe_on_a_node_without_config_is_not_running(node, guests, rsctmp1):
    p = {"config": "/var/tmp/pyra-td/xml/does-not-exist.xml"}
    assert guests.run(node, "monitor", p, rsctmp1).rc == 7
    assert guests.run(node, "stop", p, rsctmp1).rc == 0
    assert guests.run(node, "start", p, rsctmp1).rc == 5


def test_paused_by_admin_is_degraded(node, guests, rsctmp1):
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    c = node.conn()
    try:
        c.lookupByName(g["name"]).suspend()
        r = guests.run(node, "monitor", p, rsctmp1, interval=10000)
        assert r.rc == 190, r
        r = guests.run(node, "stop", p, rsctmp1)                        # paused: destroyed at once
        assert r.rc == 0 and r.elapsed < 3.0, r
    finally:
        c.close()
    assert gone(node, g)


def test_no_channel_and_signal_off(node, guests, rsctmp1):
    g = guests.xml(channel=False)
    p = {"config": g["config"]}
    r = guests.run(node, "start", p, rsctmp1)
    assert r.rc == 0 and r.elapsed < 3.0, r                           # auto: no channel => no wait
    assert guests.run(node, "stop", dict(p, force_stop="1"), rsctmp1).rc == 0
    r = guests.run(node, "validate-all", dict(p, startup_signal="on"), rsctmp1)
    assert r.rc == 6 and "startup_signal" in r.exit_reason, r


def test_monitor_scripts_gate_start(node, guests, rsctmp1, tmp_path):
    g = guests.xml()
    flag = tmp_path / "ok"
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\ntest -e %s\n" % flag)
    script.chmod(0o755)
    # The failing start is gated by the script alone (no handshake), so how fast the guest boots on a busy
    # machine cannot decide it; the passing start has the operation's whole timeout to become ready.
    gate = {"config": g["config"], "monitor_scripts": str(script), "startup_signal": "off", "startup_timeout": "2s"}
    r = guests.run(node, "start", gate, rsctmp1)
    assert r.rc == 1 and "monitor script" in r.exit_reason, r
    assert gone(node, g)
    flag.write_text("")
    p = {"config": g["config"], "monitor_scripts": str(script)}
    assert guests.run(node, "start", p, rsctmp1).rc == 0
    assert guests.run(node, "monitor", p, rsctmp1, interval=60000, check_level=10).rc == 0
    flag.unlink()
    assert guests.run(node, "monitor", p, rsctmp1, interval=60000, check_level=10).rc == 1
    assert guests.run(node, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(node, "stop", p, rsctmp1).rc == 0


def test_validate_all_depth(node, guests, rsctmp1):
    g = guests.xml(disk="/var/tmp/pyra-td/no-such-disk.img")
    p = {"config": g["config"]}
    assert guests.run(node, "validate-all", p, rsctmp1).rc == 0
    r = guests.run(node, "validate-all", p, rsctmp1, check_level=10)
    assert r.rc == 5 and "no-such-disk" in r.exit_reason, r
    g2 = guests.xml()
    assert guests.run(node, "validate-all", {"config": g2["config"]}, rsctmp1, check_level=10).rc == 0
    bad = L.WORK / "xml" / "broken.xml"
    bad.write_text("<domain><name>x</name>")
    r = guests.run(node, "validate-all", {"config": str(bad)}, rsctmp1)
    assert r.rc == 6, r
    r = guests.run(node, "validate-all", {"config": g2["config"], "hypervisor": "qemu+unix:///system?socket=/nonexistent"},
                   rsctmp1, check_level=10)
    assert r.rc == 5 and "reachable" in r.exit_reason, r
