"""Fault injection for TransientDomain (issue 8): faults during a live migration and an agent that is itself
SIGKILLed mid-action. Real libvirtd and QEMU on the two "nodes" of conftest's ``pair`` (td-n1, td-n2).

A migration that is still running when a fault hits is made with a guest that keeps rewriting 48 MiB of memory
(td_dirty, 32 MiB: 48 ran the 128 MiB guest out of memory) under a 1 MiB/s bandwidth limit: it cannot finish by itself, so the fault always lands mid-transfer.
What must hold (tests/FAULTS.md): migrate_to ends before its deadline with 1 and a reason, the guest keeps running
on the source, and nothing is left running on the target; an agent killed mid-start or mid-stop converges when
Pacemaker re-runs the action, with exactly one guest and an intact state file.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

import faultkit
from lab.rigs import libvirt_node as L

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.netns, pytest.mark.faults]

AGENT = "TransientDomain"
META_12 = {"migrate_source": "td-n1", "migrate_target": "td-n2"}


class Background:
    """One agent action running in a thread (the test injects a fault meanwhile)."""

    def __init__(self, guests, node, action, params, rsctmp, **kw):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(guests, node, action, params, rsctmp), kwargs=kw)
        self.thread.start()

    def _run(self, guests, node, action, params, rsctmp, **kw):
        self.result = guests.run(node, action, params, rsctmp, **kw)

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "agent did not return"
        return self.result


def wait_migrating(node, name, timeout=20.0):
    """Until ``node`` runs a migration job for ``name`` (data is flowing)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        conn = node.conn()
        try:
            dom = conn.lookupByName(name)
            info = dom.jobInfo()
            if info[0] != 0 and info[3] > 0:             # a job is running and has sent data
                return True
        except Exception:  # noqa: BLE001 - the domain or job may not exist yet
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    return False


def target_qemu_pid(node, name):
    try:
        return int((node.dir / "run" / "qemu" / (name + ".pid")).read_text())
    except (OSError, ValueError):
        return None


def settle_single_copy(n1, n2, name, timeout=60.0):
    """Wait until the guest runs on exactly one node and the other has no domain (incoming leftovers gone)."""
    end = time.monotonic() + timeout
    states = None
    while time.monotonic() < end:
        states = (n1.state(name), n2.state(name))
        running = [s for s in states if s is not None and s[0] == 1]
        if len(running) == 1 and None in states:
            return states
        time.sleep(0.5)
    raise AssertionError("guest %s not settled on one node: %s" % (name, states))


def never_two_copies(n1, n2, name, timeout=60.0):
    """Wait until an incoming leftover is gone: at most one node holds the guest, and nothing runs twice."""
    end = time.monotonic() + timeout
    states = None
    while time.monotonic() < end:
        states = (n1.state(name), n2.state(name))
        assert sum(1 for s in states if s is not None and s[0] == 1) <= 1, states
        if None in states:
            return states
        time.sleep(0.5)
    raise AssertionError("guest %s still on both nodes: %s" % (name, states))


def probe_is_honest(guests, node, g, p, rsctmp):
    """A probe never says "stopped" while a copy of the guest exists on the node (a half-arrived incoming
    migration may still complete: reporting 7 could let Pacemaker start the guest a second time)."""
    r = guests.run(node, "monitor", p, rsctmp)
    if node.state(g["name"]) is None:
        assert r.rc == 7, r
    else:
        assert r.rc != 7, (r, node.state(g["name"]))


def start_dirty_guest(guests, n1, rsctmp1):
    g = guests.xml(cmdline="td_dirty=32")
    p = {"config": g["config"], "migration_bandwidth": "1"}
    r = guests.run(n1, "start", p, rsctmp1)
    assert r.rc == 0, r
    return g, p


def finish(guests, n1, n2, g, p, rsctmp1, rsctmp2):
    """Pacemaker's recovery after a failed migrate_to: stop on both nodes; nothing may remain."""
    assert guests.run(n2, "stop", p, rsctmp2, timeout_ms=30000).rc == 0
    assert guests.run(n1, "stop", p, rsctmp1, timeout_ms=30000).rc == 0
    assert n1.state(g["name"]) is None and n2.state(g["name"]) is None
    assert not L.qemu_pids(g["uuid"])


# ------------------------------------------------------------------------------------ libvirtd faults
def test_migrate_to_with_source_libvirtd_frozen(pair, guests, rsctmp1, rsctmp2):
    """libvirtd hung before the migration starts: migrate_to gives up in time, the guest stays where it is."""
    n1, n2 = pair
    g = guests.xml()
    p = {"config": g["config"]}
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    pid = n1.freeze_daemon()
    try:
        r = guests.run(n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=8000)
        assert r.rc == 1 and not r.killed and r.elapsed < 8.0, r
        assert "not reachable" in r.exit_reason, r
    finally:
        n1.thaw_daemon(pid)
    assert n1.state(g["name"])[0] == 1 and n2.state(g["name"]) is None
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(n2, "monitor", p, rsctmp2).rc == 7
    finish(guests, n1, n2, g, p, rsctmp1, rsctmp2)


def test_source_libvirtd_frozen_mid_migration(pair, guests, rsctmp1, rsctmp2):
    """libvirtd hangs while it migrates: migrate_to still returns before its deadline, with a reason; once the
    daemon thaws the guest runs exactly once, and Pacemaker's stops on both nodes leave nothing."""
    n1, n2 = pair
    g, p = start_dirty_guest(guests, n1, rsctmp1)
    job = Background(guests, n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=15000)
    assert wait_migrating(n1, g["name"])
    pid = n1.freeze_daemon()
    try:
        r = job.join(30)
        assert r.rc == 1 and not r.killed and r.elapsed < 15.0, r
        assert r.exit_reason and "migration" in r.exit_reason, r
    finally:
        n1.thaw_daemon(pid)
    assert n1.state(g["name"])[0] == 1                                   # the source still runs the guest
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
    probe_is_honest(guests, n2, g, p, rsctmp2)
    finish(guests, n1, n2, g, p, rsctmp1, rsctmp2)


def test_target_killed_mid_migration(pair, guests, rsctmp1, rsctmp2):
    """The target node dies (its libvirtd and the incoming QEMU SIGKILLed): the source keeps the guest and
    migrate_to says so."""
    n1, n2 = pair
    g, p = start_dirty_guest(guests, n1, rsctmp1)
    job = Background(guests, n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=30000)
    try:
        assert wait_migrating(n1, g["name"])
        incoming = target_qemu_pid(n2, g["name"])
        assert incoming, "no incoming QEMU on the target"
        os.kill(n2.libvirtd_pid(), signal.SIGKILL)
        os.kill(incoming, signal.SIGKILL)
        r = job.join(40)
        assert r.rc == 1 and not r.killed and r.elapsed < 30.0, r
        assert "still runs here" in r.exit_reason, r
        assert n1.state(g["name"])[0] == 1
        assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
        assert L.ping(n1.channel_path(g["name"]), "after-target-death")
    finally:
        n2.stop_daemon()
        n2.start()
    assert n2.state(g["name"]) is None
    finish(guests, n1, n2, g, p, rsctmp1, rsctmp2)


def test_link_cut_mid_migration(pair, guests, rsctmp1, rsctmp2):
    """The migration network goes down mid-transfer (veth down, no RST): migrate_to aborts before its deadline,
    the guest keeps running on the source; when the link returns the target holds no copy."""
    n1, n2 = pair
    g, p = start_dirty_guest(guests, n1, rsctmp1)
    dev = L.NETNS["td-n1"][1]
    job = Background(guests, n1, "migrate_to", p, rsctmp1, meta=META_12, timeout_ms=20000)
    try:
        assert wait_migrating(n1, g["name"])
        subprocess.run(["ip", "-n", "td-n1", "link", "set", dev, "down"], check=True, timeout=10)
        r = job.join(40)
        assert r.rc == 1 and not r.killed and r.elapsed < 20.0, r
        # Almost always QEMU resumes the source; once in a while (seen on a quiet Debian 12 machine) the source
        # QEMU is gone when the abort ends. Either way the exit reason tells the truth about the source.
        survived = "still runs here" in r.exit_reason
        if survived:
            assert n1.state(g["name"])[0] == 1
            assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
        else:
            assert "shut off here" in r.exit_reason or "NOT running here" in r.exit_reason, r
            state = n1.state(g["name"])
            assert state is None or state[0] != 1, state
        probe_is_honest(guests, n2, g, p, rsctmp2)
    finally:
        subprocess.run(["ip", "-n", "td-n1", "link", "set", dev, "up"], check=True, timeout=10)
    if survived:
        settle_single_copy(n1, n2, g["name"], timeout=90)
        assert n1.state(g["name"])[0] == 1
    else:
        never_two_copies(n1, n2, g["name"], timeout=90)
    finish(guests, n1, n2, g, p, rsctmp1, rsctmp2)


# ------------------------------------------------------------------------------------ the agent killed
def spawn_agent(node, action, params, rsctmp, timeout_ms=30000):
    return faultkit.spawn(AGENT, action, params, rsctmp, "td-guest", timeout_ms=timeout_ms, prefix=node.ns_prefix())


def assert_state_intact(rsctmp, phase):
    lines = faultkit.state_lines(rsctmp, AGENT, "td-guest")
    if phase is None:
        assert lines is None, lines
        return
    assert lines is not None and "phase=%s" % phase in lines, lines
    directory = os.path.dirname(faultkit.state_path(rsctmp, AGENT, "td-guest"))
    leftovers = [f for f in os.listdir(directory) if f.startswith("td-guest") and ".tmp" in f]
    assert not leftovers, leftovers


def test_agent_killed_mid_start_then_start_again(pair, guests, rsctmp1):
    """SIGKILL the agent while the guest boots (after the domain exists, before the handshake): the re-run start
    adopts the guest, completes the handshake and returns 0; one QEMU, an intact record, a clean stop."""
    n1, _ = pair
    g = guests.xml()
    p = {"config": g["config"]}
    proc = spawn_agent(n1, "start", p, rsctmp1)
    end = time.monotonic() + 20
    while n1.state(g["name"]) is None and time.monotonic() < end:
        time.sleep(0.05)
    assert n1.state(g["name"]) is not None, "the domain was never created"
    faultkit.kill_group(proc)
    assert_state_intact(rsctmp1, "started")
    log = L.WORK / "console" / (g["name"] + "-restart.log")
    r = guests.run(n1, "start", p, rsctmp1, env={"HA_LOGFILE": str(log)})
    assert r.rc == 0, r
    assert "answered on its startup_signal channel" in log.read_text(), log.read_text()
    assert len(L.qemu_pids(g["uuid"])) == 1
    assert_state_intact(rsctmp1, "started")
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 0
    assert guests.run(n1, "stop", p, rsctmp1).rc == 0
    assert_state_intact(rsctmp1, None)
    assert not L.qemu_pids(g["uuid"])


def test_agent_killed_mid_stop_then_stop_again(pair, guests, rsctmp1):
    """SIGKILL the agent while it waits for a guest that ignores ACPI: the re-run stop finishes the job."""
    n1, _ = pair
    g = guests.xml(cmdline="td_deaf")
    p = {"config": g["config"], "shutdown_mode": "acpi"}
    assert guests.run(n1, "start", p, rsctmp1).rc == 0
    faultkit.kill_group(spawn_agent(n1, "stop", p, rsctmp1, timeout_ms=60000), after=2.0)
    assert n1.state(g["name"])[0] == 1                                   # the deaf guest still runs
    assert_state_intact(rsctmp1, "started")
    r = guests.run(n1, "monitor", p, rsctmp1, interval=10000)
    assert r.rc == 0, r                                                  # not "stopped": it runs
    r = guests.run(n1, "stop", p, rsctmp1, timeout_ms=10000)
    assert r.rc == 0 and not r.killed and r.elapsed < 10.0, r
    assert not L.qemu_pids(g["uuid"])
    assert_state_intact(rsctmp1, None)
    assert guests.run(n1, "monitor", p, rsctmp1, interval=10000).rc == 7
