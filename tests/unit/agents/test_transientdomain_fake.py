"""ocf:pyra:TransientDomain through its OCF entry point against a fake libvirt (tests/fakes/libvirt): no root,
no QEMU, no libvirtd, milliseconds per action.

The agent runs in-process (``pyra.agents.load("TransientDomain")().main(argv, environ)``) with the fake loaded
as the module ``libvirt``; two tests run the ``agents/TransientDomain`` executable with the fake on PYTHONPATH.
Everything is asserted through public behaviour only: OCF codes, exit reasons, the state record under
``HA_RSCTMP/pyra/TransientDomain/<instance>.state``, what the fake libvirtd saw, what the guest's startup_signal
channel received, which processes survived. Each fake node has its own HA_RSCTMP (two nodes for migrations).
"""

import contextlib
import importlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import uuid as uuidlib

import pytest

from harness import AGENTS_DIR, REPO, agent_env

AGENT = "TransientDomain"
INSTANCE = "vm1"
FAKES = os.path.join(REPO, "tests", "fakes")
FAKE_DIR = os.path.join(FAKES, "libvirt")
LIB = os.path.join(REPO, "lib")
FEATURE_SET = "3.16.2"

# libvirt values the assertions use (the fake carries the real ones)
RUNNING, PAUSED = 1, 3
PAUSED_USER, PAUSED_MIGRATION, PAUSED_IOERROR = 1, 2, 5
MIGRATE_LIVE, MIGRATE_PEER2PEER, MIGRATE_ABORT_ON_ERROR = 1, 2, 4096

_SWAPPED = ("libvirt", "pyra.backends.libvirt_api", "pyra.agents.transientdomain")


def _swapped(name):
    return any(name == s or name.startswith(s + ".") for s in _SWAPPED)


def _bound_to(module, targets):
    """Whether ``module`` holds one of ``targets`` (an earlier import of the real libvirt or libvirt_api)."""
    return any(any(value is t for t in targets) for value in list(vars(module).values()))


@pytest.fixture(scope="module")
def lv():
    """The fake loaded as ``libvirt``; the agent and libvirt_api freshly imported against it, restored after.
    Any other pyra module already bound to a real ``libvirt`` (python3-libvirt installed, imported by an
    earlier test) is re-imported too."""
    import pyra.agents
    import pyra.backends
    old = [m for m in (sys.modules.get("libvirt"), sys.modules.get("pyra.backends.libvirt_api")) if m is not None]
    saved = {k: v for k, v in sys.modules.items()
             if _swapped(k) or (old and k.startswith("pyra.") and v is not None and _bound_to(v, old))}
    parents = [(sys.modules.get(k.rpartition(".")[0]), k.rpartition(".")[2]) for k in saved if "." in k]
    parents += [(pyra.backends, "libvirt_api"), (pyra.agents, "transientdomain")]
    parents = [(pkg, attr) for pkg, attr in parents if pkg is not None and not _swapped(pkg.__name__)]
    saved_attrs = [(pkg, attr, getattr(pkg, attr)) for pkg, attr in parents if hasattr(pkg, attr)]
    for key in saved:
        del sys.modules[key]
    for pkg, attr, _value in saved_attrs:
        if hasattr(pkg, attr):
            delattr(pkg, attr)
    spec = importlib.util.spec_from_file_location("libvirt", os.path.join(FAKE_DIR, "__init__.py"),
                                                  submodule_search_locations=[FAKE_DIR])
    fake = importlib.util.module_from_spec(spec)
    sys.modules["libvirt"] = fake
    spec.loader.exec_module(fake)
    importlib.import_module("libvirt.guest")
    from pyra.backends import libvirt_api
    assert libvirt_api.libvirt is fake
    try:
        yield fake
    finally:
        fake.fake_world().reset()  # wakes any call of the last test still blocked in a hang
        for key in [k for k in sys.modules if _swapped(k) or k in saved]:
            del sys.modules[key]
        sys.modules.update(saved)
        for pkg, attr in parents:
            if hasattr(pkg, attr):
                delattr(pkg, attr)
        for pkg, attr, value in saved_attrs:
            setattr(pkg, attr, value)


class Result:
    def __init__(self, rc, stderr, log):
        self.rc = rc
        self.stderr = stderr
        self.log = log

    @property
    def reasons(self):
        return [line[len("ocf-exit-reason:"):] for line in self.stderr.splitlines()
                if line.startswith("ocf-exit-reason:")]

    @property
    def reason(self):
        return self.reasons[-1] if self.reasons else None

    def __repr__(self):
        return "Result(rc=%r, reason=%r)\n--- agent log ---\n%s" % (self.rc, self.reason, self.log[-3000:])


class Lab:
    """Two fake nodes n1, n2 (each a libvirtd with its own HA_RSCTMP), one guest config, the helpers."""

    def __init__(self, lv, tmp_path, monkeypatch):
        self.lv = lv
        self.world = lv.fake_world()
        self.world.reset()
        for node in ("n1", "n2"):
            self.world.add_node(node)
        self.tmp = tmp_path
        self.socks = tempfile.mkdtemp(prefix="ptd-")  # AF_UNIX paths must stay short
        # the local fake node, on a socket where no daemon listens: the monitor's libvirt-free path
        # (libvirt_wire, tested in tests/unit/backends/test_libvirt_wire.py) hands over to the fake binding
        # instead of meeting a real libvirtd this machine may run
        self.hypervisor = "qemu+unix:///system?socket=%s/no-libvirtd-sock" % self.socks
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        stub = self.bin / "crm_resource"
        stub.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$(dirname "$0")/crm_resource.calls"\nexit 0\n')
        stub.chmod(0o755)
        monkeypatch.setenv("PATH", "%s:%s" % (self.bin, os.environ.get("PATH", "/usr/bin:/bin")))
        self.channels = []
        self.emulators = []
        self.uuid = str(uuidlib.uuid4())
        self.config_path = self.config()

    def close(self):
        self.world.reset()
        for ch in self.channels:
            ch.stop()
        for emu in self.emulators:
            emu.stop()
        shutil.rmtree(self.socks, ignore_errors=True)

    # -- the guest ---------------------------------------------------------------------------------------
    def config(self, name=INSTANCE, uuid=None, channel=True, vcpus=2, memory_mib=512, devices=""):
        uuid = uuid or self.uuid
        ch = "<channel type='unix'><target type='virtio' name='startup_signal'/></channel>" if channel else ""
        path = self.tmp / ("%s.xml" % name)
        path.write_text(
            "<domain type='qemu'>\n  <name>%s</name>\n  <uuid>%s</uuid>\n  <memory unit='MiB'>%d</memory>\n"
            "  <vcpu>%d</vcpu>\n  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
            "  <devices>%s%s</devices>\n</domain>\n" % (name, uuid, memory_mib, vcpus, ch, devices))
        return str(path)

    def channel(self, name=INSTANCE, mode="ready", token="boot-1"):
        """The guest's startup_signal channel (a responder thread on a real unix socket)."""
        path = os.path.join(self.socks, "%s-%d.sock" % (name, len(self.channels)))
        ch = self.lv.guest.GuestChannel(path, token=token, mode=mode).start()
        self.channels.append(ch)
        self.world.guest(name, channel=path)
        return ch

    def emulator(self, uuid=None, name=INSTANCE):
        emu = self.lv.guest.FakeEmulator(uuid or self.uuid, name)
        self.emulators.append(emu)
        return emu

    # -- running the agent -----------------------------------------------------------------------------
    def rsctmp(self, node):
        return str(self.tmp / node / "rsctmp")

    def run(self, action, node="n1", interval=None, timeout_ms=20000, check_level=None, pacemaker=False,
            meta=None, **params):
        p = {"config": self.config_path, "hypervisor": self.hypervisor}
        p.update(params)
        os.makedirs(self.rsctmp(node), exist_ok=True)
        logfile = str(self.tmp / node / "agent.log")
        extra = {"HA_LOGFILE": logfile, "HA_debug": "1", "PATH": os.environ["PATH"]}
        if pacemaker:
            extra["OCF_RESKEY_crm_feature_set"] = FEATURE_SET
        environ = agent_env(AGENT, p, interval=interval, timeout_ms=timeout_ms, check_level=check_level,
                            rsctmp=self.rsctmp(node), instance=INSTANCE, env=extra, meta=meta)
        self.world.set_local(node)
        import pyra.agents
        err, out = io.StringIO(), io.StringIO()
        with open(logfile, "a") as handle:
            handle.write("==== %s on %s\n" % (action, node))
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = pyra.agents.load(AGENT)().main([AGENT, action], environ)
        with open(logfile) as handle:
            log = handle.read()
        return Result(rc, err.getvalue(), log)

    def start(self, node="n1", **params):
        r = self.run("start", node, **params)
        assert r.rc == 0, r
        return r

    def record(self, node="n1"):
        """The state record on ``node`` as a dict, or None when there is none."""
        path = os.path.join(self.rsctmp(node), "pyra", AGENT, INSTANCE + ".state")
        try:
            with open(path) as handle:
                return dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
        except FileNotFoundError:
            return None

    def crm_resource_calls(self):
        path = self.bin / "crm_resource.calls"
        return path.read_text().splitlines() if path.exists() else []

    def methods(self, node="n1"):
        return self.world.methods(node)


@pytest.fixture
def lab(lv, tmp_path, monkeypatch):
    lab = Lab(lv, tmp_path, monkeypatch)
    try:
        yield lab
    finally:
        lab.close()


# -- probe, start, monitor, stop ------------------------------------------------------------------------------
def test_probe_on_a_node_that_never_started_it_is_7(lab):
    r = lab.run("monitor")
    assert r.rc == 7 and r.reasons == [], r
    assert lab.record() is None
    assert ("n1", "lookupByUUIDString", [lab.uuid]) in lab.world.calls()
    assert "createXML" not in lab.methods()


def test_start_with_handshake_then_monitor_and_graceful_stop(lab):
    guest = lab.channel(token="tok-42")
    r = lab.run("start")
    assert r.rc == 0 and r.reasons == [], r
    record = lab.record()
    assert record["phase"] == "started" and record["id.uuid"] == lab.uuid and record["id.name"] == INSTANCE
    assert guest.acked and "ack tok-42" in guest.received and guest.pings, guest.received
    [(_node, _m, (xml, flags))] = lab.world.calls("n1", "createXML")
    assert flags == 0 and lab.uuid in xml and "<name>vm1</name>" in xml  # transient, never AUTODESTROY
    assert lab.world.domain("n1", lab.uuid)["state"] == RUNNING

    lab.world.clear_calls()
    r = lab.run("monitor", interval=10000)
    assert r.rc == 0 and r.reasons == [], r
    methods = lab.methods()
    assert methods.count("open") == 1 and methods.count("lookupByUUIDString") == 1 and methods.count("state") == 1
    assert "XMLDesc" not in methods and "lookupByName" not in methods, methods

    lab.world.clear_calls()
    r = lab.run("stop")
    assert r.rc == 0 and r.reasons == [], r
    assert "shutdown" in lab.methods() and "destroy" not in lab.methods(), lab.methods()
    assert lab.world.domain("n1", lab.uuid) is None
    assert lab.record() is None


def test_stop_in_acpi_mode_presses_the_power_button(lab):
    lab.channel()
    lab.start()
    r = lab.run("stop", shutdown_mode="acpi")
    assert r.rc == 0, r
    assert ("n1", "shutdownFlags", [1]) in lab.world.calls() and "destroy" not in lab.methods()
    assert lab.world.domain("n1", lab.uuid) is None and lab.record() is None


def test_stop_escalates_to_destroy_when_the_guest_ignores_acpi(lab):
    lab.channel()
    lab.world.guest(INSTANCE, on_shutdown="ignore")
    lab.start()
    r = lab.run("stop", timeout_ms=1500, shutdown_mode="acpi")
    assert r.rc == 0 and r.reasons == [], r
    methods = lab.methods()
    assert "shutdownFlags" in methods and "destroy" in methods, methods
    assert methods.index("shutdownFlags") < methods.index("destroy")
    assert lab.world.domain("n1", lab.uuid) is None and lab.record() is None


def test_stop_destroys_at_once_when_the_shutdown_request_is_refused(lab):
    lab.channel()
    lab.world.guest(INSTANCE, on_shutdown="refuse")  # e.g. shutdown_mode=agent and no guest agent
    lab.start()
    r = lab.run("stop", shutdown_mode="agent")
    assert r.rc == 0, r
    assert ("n1", "shutdownFlags", [2]) in lab.world.calls() and "destroy" in lab.methods()
    assert lab.world.domain("n1", lab.uuid) is None and lab.record() is None


def test_force_stop_destroys_without_asking(lab):
    lab.channel()
    lab.start()
    r = lab.run("stop", force_stop="true")
    assert r.rc == 0, r
    assert "destroy" in lab.methods()
    assert not {"shutdown", "shutdownFlags"} & set(lab.methods())
    assert lab.world.domain("n1", lab.uuid) is None


def test_start_fails_and_destroys_a_guest_that_never_signals_ready(lab):
    guest = lab.channel(mode="silent")
    r = lab.run("start", timeout_ms=2000)
    assert r.rc == 1, r
    assert "not ready" in r.reason and "destroyed it" in r.reason, r
    assert guest.connections >= 1
    assert "destroy" in lab.methods()
    assert lab.world.domain("n1", lab.uuid) is None
    assert lab.record() is None  # nothing runs: forgotten


def test_start_when_already_running_completes_the_handshake(lab):
    # an earlier start created the guest and was killed before the handshake: the guest still says ready
    with open(lab.config_path) as handle:
        xml = handle.read()
    guest = lab.channel(token="late-1")
    lab.world.add_domain("n1", INSTANCE, uuid=lab.uuid, xml=xml)
    r = lab.run("start")
    assert r.rc == 0 and r.reasons == [], r
    assert "createXML" not in lab.methods()
    assert guest.wait_received("ack late-1") and guest.acked, guest.received
    assert lab.record()["phase"] == "started" and lab.record()["id.uuid"] == lab.uuid


def test_start_refused_by_a_persistent_domain_of_that_name(lab):
    lab.world.add_domain("n1", INSTANCE, uuid=lab.uuid, persistent=True)
    r = lab.run("start")
    assert r.rc == 5, r
    assert "persistent domain vm1" in r.reason and lab.uuid in r.reason, r
    assert "createXML" not in lab.methods() and "destroy" not in lab.methods()
    assert lab.record() is None


def test_start_refused_when_another_domain_holds_the_name(lab):
    other = str(uuidlib.uuid4())
    lab.world.add_domain("n1", INSTANCE, uuid=other)
    r = lab.run("start")
    assert r.rc == 5, r
    assert "another domain vm1 (%s)" % other in r.reason, r
    assert "createXML" not in lab.methods() and "destroy" not in lab.methods()
    assert lab.world.domain("n1", other)["state"] == RUNNING  # never touched
    assert lab.record() is None


def test_monitor_after_a_crash_is_1_but_a_probe_is_7(lab):
    lab.channel()
    lab.start()
    lab.world.crash("n1", lab.uuid)
    r = lab.run("monitor", interval=10000)
    assert r.rc == 1, r
    assert "vm1" in r.reason and "started here and not stopped" in r.reason, r
    r = lab.run("monitor")
    assert r.rc == 7 and r.reasons == [], r
    assert lab.record()["phase"] == "started"  # a probe does not forget the crash
    assert lab.run("stop").rc == 0
    assert lab.record() is None
    assert lab.run("monitor", interval=10000).rc == 7


@pytest.mark.parametrize("reason,code,words", [
    (PAUSED_IOERROR, 190, "vm1 is paused: ioerror"),
    (PAUSED_USER, 190, "vm1 was paused by an administrator"),
    (PAUSED_MIGRATION, 0, None),
], ids=["ioerror", "user", "migration"])
def test_paused_guest(lab, reason, code, words):
    lab.channel()
    lab.start()
    lab.world.set_domain("n1", lab.uuid, state=PAUSED, reason=reason)
    r = lab.run("monitor", interval=10000)
    assert r.rc == code, r
    assert r.reason == words, r


def test_stop_destroys_a_paused_guest(lab):
    lab.channel()
    lab.start()
    lab.world.set_domain("n1", lab.uuid, state=PAUSED, reason=PAUSED_IOERROR)
    assert lab.run("stop").rc == 0
    assert "destroy" in lab.methods() and not {"shutdown", "shutdownFlags"} & set(lab.methods())
    assert lab.world.domain("n1", lab.uuid) is None


# -- libvirtd down or hung --------------------------------------------------------------------------------------
def test_probe_with_libvirtd_refusing_and_no_record_is_7(lab):
    lab.world.refuse("n1")
    r = lab.run("monitor")
    assert r.rc == 7 and r.reasons == [], r
    assert "open" in lab.methods() and lab.record() is None


def test_monitor_with_libvirtd_refusing_falls_back_to_the_emulator(lab):
    lab.channel()
    lab.start()
    lab.world.refuse("n1")
    emu = lab.emulator()
    r = lab.run("monitor", interval=10000)
    assert r.rc == 190, r
    assert "libvirtd unreachable" in r.reason and "(pid %d)" % emu.pid in r.reason, r
    assert lab.run("monitor").rc == 0  # a probe: it runs
    emu.stop()
    r = lab.run("monitor", interval=10000)
    assert r.rc == 1 and "no emulator of vm1 runs" in r.reason, r  # started here, gone: a crash


def test_monitor_with_libvirtd_hung_falls_back_to_the_emulator(lab):
    lab.channel()
    lab.start()
    emu = lab.emulator()
    lab.world.hang("n1")
    r = lab.run("monitor", interval=10000, timeout_ms=1000)
    assert r.rc == 190 and "libvirtd unreachable" in r.reason and str(emu.pid) in r.reason, r
    lab.world.release()


def test_stop_with_libvirtd_down_kills_the_emulator(lab):
    lab.channel()
    lab.start()
    bystander = lab.emulator(uuid=str(uuidlib.uuid4()), name="vm2")  # another guest's QEMU: left alone
    emu = lab.emulator()
    lab.world.refuse("n1")
    r = lab.run("stop")
    assert r.rc == 0, r
    assert emu.wait_dead(), "the emulator survived the stop"
    assert bystander.alive()
    assert lab.record() is None


def test_stop_with_libvirtd_frozen_after_connecting_still_kills_the_emulator(lab):
    lab.channel()
    lab.start()
    emu = lab.emulator()
    lab.world.hang("n1", ["lookupByUUIDString", "state", "shutdown", "shutdownFlags", "destroy"])
    r = lab.run("stop", timeout_ms=1000)
    lab.world.release()
    assert emu.wait_dead(), "the emulator survived the stop"
    assert r.rc == 0 and r.reasons == [], r
    assert lab.record() is None


def test_stop_fails_when_destroy_fails_and_the_emulator_lives(lab):
    lab.channel()
    lab.world.guest(INSTANCE, on_destroy="fail")
    lab.start()
    emu = lab.emulator()
    r = lab.run("stop", force_stop="true")
    assert r.rc == 1, r
    assert "stopping vm1" in r.reason and "Failed to terminate" in r.reason, r
    assert emu.alive() and lab.record()["phase"] == "started"


# -- the config file unreadable here ------------------------------------------------------------------------
def test_probe_with_unreadable_config_and_no_record_is_7(lab):
    r = lab.run("monitor", config=str(lab.tmp / "nowhere" / "vm1.xml"))
    assert r.rc == 7 and r.reasons == [], r
    assert lab.record() is None


def test_probe_with_unreadable_config_but_a_record_uses_the_recorded_uuid(lab):
    lab.channel()
    lab.start()
    os.rename(lab.config_path, lab.config_path + ".away")   # e.g. the shared storage went away
    r = lab.run("monitor")
    assert r.rc == 0, r
    assert ("n1", "lookupByUUIDString", [lab.uuid]) in lab.world.calls()
    lab.world.crash("n1", lab.uuid)
    assert lab.run("monitor").rc == 7
    r = lab.run("monitor", interval=10000)
    assert r.rc == 1 and "started here and not stopped" in r.reason, r


def test_stop_with_unreadable_config_stops_the_recorded_guest(lab):
    lab.channel()
    lab.start()
    os.unlink(lab.config_path)
    r = lab.run("stop")
    assert r.rc == 0, r
    assert lab.world.domain("n1", lab.uuid) is None and lab.record() is None


# -- migration ---------------------------------------------------------------------------------------------
def _migrate_to(lab, **params):
    return lab.run("migrate_to", "n1", meta={"migrate_source": "n1", "migrate_target": "n2"}, **params)


def test_migrate_to_then_migrate_from(lab):
    guest = lab.channel()
    lab.start()
    r = _migrate_to(lab)
    assert r.rc == 0 and r.reasons == [], r
    assert lab.record("n1")["phase"] == "migrated" and lab.record("n1")["target"] == "n2"
    [(_n, _m, (uri, params, flags))] = lab.world.calls("n1", "migrateToURI3")
    assert uri == "qemu+tcp://n2/system"
    assert flags & MIGRATE_LIVE and flags & MIGRATE_PEER2PEER and flags & MIGRATE_ABORT_ON_ERROR, flags
    assert lab.world.domain("n1", lab.uuid) is None
    assert lab.world.domain("n2", lab.uuid)["state"] == RUNNING

    pings = len(guest.pings)
    r = lab.run("migrate_from", "n2", meta={"migrate_source": "n1", "migrate_target": "n2"})
    assert r.rc == 0 and r.reasons == [], r
    assert len(guest.pings) > pings  # a fresh handshake with the guest on its new node
    assert lab.record("n2")["phase"] == "started" and lab.record("n2")["source"] == "n1"

    assert lab.run("monitor", "n1").rc == 7              # the source knows it left
    assert lab.run("stop", "n1").rc == 0 and lab.record("n1") is None
    assert lab.run("monitor", "n2", interval=10000).rc == 0
    assert lab.world.domain("n2", lab.uuid)["state"] == RUNNING


def test_migrate_to_with_bandwidth_and_migrate_uri(lab):
    lab.channel()
    lab.start()
    r = _migrate_to(lab, migration_bandwidth=500, migrate_uri="tcp://%n-mig:49152", migration_transport="ssh",
                    migration_user="admin")
    assert r.rc == 0, r
    [(_n, _m, (uri, params, _flags))] = lab.world.calls("n1", "migrateToURI3")
    assert uri == "qemu+ssh://admin@n2/system"
    assert params == {"bandwidth": 500, "migrate_uri": "tcp://n2-mig:49152"}


def test_direct_migration_connects_to_the_target_itself(lab):
    lab.channel()
    lab.start()
    r = _migrate_to(lab, migration_mode="direct")
    assert r.rc == 0, r
    assert ("n2", "open", ["qemu+tcp://n2/system"]) in lab.world.calls()
    [(_n, _m, (_uri, _params, flags))] = lab.world.calls("n1", "migrate3")
    assert not flags & MIGRATE_PEER2PEER
    assert lab.world.domain("n2", lab.uuid)["state"] == RUNNING and lab.record("n1")["phase"] == "migrated"


def test_failed_migration_leaves_the_guest_running_here(lab):
    lab.channel()
    lab.world.guest(INSTANCE, migration="fail", migration_error="operation failed: target said no")
    lab.start()
    r = _migrate_to(lab)
    assert r.rc == 1, r
    assert "target said no" in r.reason and "still runs here" in r.reason, r
    assert lab.world.domain("n1", lab.uuid)["state"] == RUNNING and lab.world.domain("n2", lab.uuid) is None
    assert lab.record("n1")["phase"] == "started"


def test_migration_that_never_converges_is_aborted_before_the_deadline(lab):
    lab.channel()
    lab.world.guest(INSTANCE, migration="stall")
    lab.start()
    r = _migrate_to(lab, timeout_ms=3000)
    assert r.rc == 1, r
    assert "did not converge" in r.reason and "aborted, the guest still runs here" in r.reason, r
    assert "abortJob" in lab.methods("n1")
    assert lab.world.domain("n1", lab.uuid)["state"] == RUNNING and lab.world.domain("n2", lab.uuid) is None
    assert lab.record("n1")["phase"] == "started"


def test_migrate_to_a_guest_not_running_here_fails(lab):
    lab.channel()
    lab.start()
    lab.world.crash("n1", lab.uuid)
    r = _migrate_to(lab)
    assert r.rc == 1 and "not running here" in r.reason, r
    assert "migrateToURI3" not in lab.methods("n1")


def test_migrate_from_fails_when_the_guest_did_not_arrive(lab):
    r = lab.run("migrate_from", "n2", meta={"migrate_source": "n1", "migrate_target": "n2"})
    assert r.rc == 1 and "did not arrive" in r.reason, r


# -- validate-all and utilization ----------------------------------------------------------------------------
def test_validate_all_checks_the_libvirt_networks(lab):
    lab.config_path = lab.config(devices="<interface type='network'><source network='lan'/></interface>")
    lab.world.set_node("n1", networks={"lan": True})
    assert lab.run("validate-all", check_level=10).rc == 0
    lab.world.set_node("n1", networks={"lan": False})
    r = lab.run("validate-all", check_level=10)
    assert r.rc == 5 and "network lan is not active" in r.reason, r
    lab.world.set_node("n1", networks={})
    assert lab.run("validate-all", check_level=10).rc == 5
    assert lab.run("validate-all").rc == 0  # depth 0: parameters only, libvirt not asked
    assert lab.methods().count("networkLookupByName") == 3


def test_utilization_is_published_on_a_probe_only_under_pacemaker(lab):
    assert lab.run("monitor").rc == 7
    assert lab.crm_resource_calls() == []             # not run by Pacemaker: no CIB to update
    assert lab.run("monitor", pacemaker=True, interval=10000).rc == 7
    assert lab.crm_resource_calls() == []             # a recurring monitor never spawns crm_resource
    r = lab.run("monitor", pacemaker=True)
    assert r.rc == 7, r
    assert sorted(lab.crm_resource_calls()) == [
        "--resource vm1 --utilization --set-parameter cpu --parameter-value 2",
        "--resource vm1 --utilization --set-parameter memory --parameter-value 512"]
    assert lab.run("monitor", pacemaker=True).rc == 7
    assert len(lab.crm_resource_calls()) == 2         # unchanged: not set again


def test_utilization_follows_a_changed_config(lab):
    assert lab.run("monitor", pacemaker=True).rc == 7
    lab.config_path = lab.config(vcpus=4, memory_mib=512)
    assert lab.run("monitor", pacemaker=True).rc == 7
    assert lab.crm_resource_calls()[2:] == ["--resource vm1 --utilization --set-parameter cpu --parameter-value 4"]


# -- the fake itself ------------------------------------------------------------------------------------------
def test_the_fake_has_every_libvirt_name_pyra_reads(lv):
    import re
    names = set()
    for root, _dirs, files in os.walk(os.path.join(LIB, "pyra")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name)) as handle:
                    text = handle.read()
                names.update(re.findall(r"\blibvirt\.([A-Za-z_][A-Za-z_0-9]*)\b(?!\.py)", text))
                names.update(re.findall(r"getattr\(libvirt, \"([A-Za-z_0-9]+)\"", text))
    names.difference_update({"py", "conf"})  # libvirt.py, libvirt.conf: file names, not attributes
    assert "open" in names and "libvirtError" in names
    assert sorted(n for n in names if not hasattr(lv, n)) == []


# -- the executable, with the fake on PYTHONPATH -------------------------------------------------------------
def test_fake_imports_under_the_typing_stub_of_libvirt_api():
    code = ("import sys; from pyra.backends import libvirt_api as a; "
            "print(a.libvirt.__file__); print('typing' in sys.modules); print(a.libvirt.fake_world().error_handlers)")
    proc = subprocess.run([sys.executable, "-S", "-c", code], env={"PYTHONPATH": "%s:%s" % (LIB, FAKES),
                                                                   "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    path, typing_loaded, handlers = proc.stdout.split()
    assert path == os.path.join(FAKE_DIR, "__init__.py")
    assert typing_loaded == "False"      # imported under the stub, not through the fallback
    assert handlers == "1"               # libvirt_api silenced libvirt's error printing


def test_agent_executable_against_a_shared_fake_world(lv, tmp_path):
    state = str(tmp_path / "world.json")
    world = lv.world.World(state)
    world.add_node("n1")
    socks = tempfile.mkdtemp(prefix="ptd-")
    guest = lv.guest.GuestChannel(os.path.join(socks, "vm1.sock"), token="sub-7").start()
    try:
        world.guest(INSTANCE, channel=guest.path)
        uid = str(uuidlib.uuid4())
        config = tmp_path / "vm1.xml"
        config.write_text("<domain type='qemu'><name>vm1</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
                          "<devices><channel type='unix'><target type='virtio' name='startup_signal'/>"
                          "</channel></devices></domain>" % uid)

        hypervisor = "qemu+unix:///system?socket=%s/no-libvirtd-sock" % socks  # see Lab.hypervisor

        def run(action, interval=None):
            env = agent_env(AGENT, {"config": str(config), "hypervisor": hypervisor}, interval=interval, rsctmp=str(tmp_path / "rsctmp"),
                            instance=INSTANCE, env={"PYTHONPATH": FAKES, "PYRA_FAKE_LIBVIRT_STATE": state,
                                                    "PYRA_FAKE_LIBVIRT_NODE": "n1",
                                                    "HA_LOGFILE": str(tmp_path / "agent.log")})
            proc = subprocess.run([os.path.join(AGENTS_DIR, AGENT), action], env=env, capture_output=True,
                                  text=True, timeout=60)
            return proc.returncode, proc.stderr

        assert run("monitor") == (7, "")
        assert run("start") == (0, "")
        assert guest.acked and "ack sub-7" in guest.received
        assert world.domain("n1", uid)["state"] == RUNNING
        assert run("monitor", interval=10000) == (0, "")
        world.set_domain("n1", uid, state=PAUSED, reason=PAUSED_IOERROR)
        assert run("monitor", interval=10000) == (190, "ocf-exit-reason:vm1 is paused: ioerror\n")
        assert run("stop") == (0, "")
        assert world.domain("n1", uid) is None
        assert {"createXML", "destroy"} <= set(world.methods("n1"))  # paused: destroyed, not shut down
        assert not os.path.exists(tmp_path / "rsctmp" / "pyra" / AGENT / "vm1.state")
    finally:
        guest.stop()
        shutil.rmtree(socks, ignore_errors=True)


# -- libvirt as the judge of the XML; the node's resources before a start (issue 13) ---------------------------
REFUSED_DISK = ("<disk type='file' device='disk'><source file='/img/a.raw' bogus='1'/>"
                "<target dev='vda' bus='virtio'/></disk>")


def test_validate_all_refuses_what_libvirts_schema_refuses(lab):
    lab.config_path = lab.config(devices=REFUSED_DISK)
    r = lab.run("validate-all")
    assert r.rc == 6 and "libvirt's schema refuses it: Extra element devices" in r.reason, r   # libxml2's words
    lab.channel()
    r = lab.run("start")
    assert r.rc == 5 and "libvirt's schema refuses it" in r.reason, r   # this node's libvirt: try another
    assert "createXML" not in lab.methods() and lab.record() is None


def test_schema_is_checked_again_only_when_the_file_changed(lab, monkeypatch):
    from pyra.backends import libvirt_schema
    checked = []
    real = libvirt_schema.check
    monkeypatch.setattr(libvirt_schema, "check", lambda data: checked.append(len(data)) or real(data))
    assert lab.run("validate-all").rc == 0
    assert lab.run("validate-all").rc == 0
    lab.channel()
    lab.start()
    assert lab.run("monitor", interval=60000, check_level=10).rc == 0   # never on the monitor path
    assert len(checked) == 1
    lab.config_path = lab.config(devices=REFUSED_DISK)               # the same file, rewritten
    assert lab.run("validate-all").rc == 6
    assert len(checked) == 2


def _stub(lab, name, rc):
    path = lab.bin / name
    path.write_text("#!/bin/sh\nexit %d\n" % rc)
    path.chmod(0o755)


@pytest.mark.parametrize("device,words", [
    ("<disk type='file' device='disk'><source file='/nonexistent/pyra/a.raw'/><target dev='vda' bus='virtio'/>"
     "</disk>", "file /nonexistent/pyra/a.raw of vm1 does not exist"),
    ("<interface type='bridge'><source bridge='nobr0'/><model type='virtio'/></interface>",
     "bridge nobr0 of vm1 does not exist"),
    ("<interface type='bridge'><source bridge='novh'/><virtualport type='openvswitch'/><vlan><tag id='150'/>"
     "</vlan><model type='virtio'/></interface>", "Open vSwitch bridge novh of vm1 does not exist"),
])
def test_start_refused_where_a_disk_or_bridge_is_missing(lab, device, words):
    _stub(lab, "ovs-vsctl", 2)                                       # br-exists: 2 = no such bridge
    lab.config_path = lab.config(devices=device)
    lab.channel()
    r = lab.run("start")
    assert r.rc == 5 and words in r.reason, r                       # placed elsewhere at once, never created
    assert "createXML" not in lab.methods()


def test_an_ovs_bridge_known_to_ovsdb_and_a_network_disk_let_the_guest_start(lab):
    _stub(lab, "ovs-vsctl", 0)
    lab.config_path = lab.config(devices=(
        "<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
        "<source protocol='nbd' name='vm1-disk'><host name='san' port='10809'/></source>"
        "<target dev='vda' bus='virtio'/></disk>"
        "<interface type='bridge'><source bridge='vh'/><virtualport type='openvswitch'/>"
        "<vlan><tag id='150'/></vlan><model type='virtio'/></interface>"))
    assert lab.run("validate-all", check_level=10).rc == 0
    lab.channel()
    lab.start()
    assert lab.run("monitor", interval=60000, check_level=10).rc == 0


def test_a_deep_monitor_fails_when_a_disk_is_gone_from_under_the_guest(lab):
    disk = lab.tmp / "disk.img"
    disk.write_bytes(b"\0" * 512)
    lab.config_path = lab.config(devices="<disk type='file' device='disk'><source file='%s'/>"
                                         "<target dev='vda' bus='virtio'/></disk>" % disk)
    lab.channel()
    lab.start()
    assert lab.run("monitor", interval=60000, check_level=10).rc == 0
    disk.unlink()
    r = lab.run("monitor", interval=60000, check_level=10)
    assert r.rc == 1 and "does not exist on this node" in r.reason, r
    assert lab.run("monitor", interval=10000).rc == 0                # depth 0 looks at libvirt only
