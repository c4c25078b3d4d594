"""pyra.backends.libvirt_proc: which processes are a guest's (QEMU emulator, libvirt-LXC controller and init),
and the order they are killed in, against a fake process table (no root, no /proc of real guests)."""

import pytest

from pyra.backends import libvirt_proc as P
from pyra.ocf.deadline import Deadline

UUID = "9f3617c9-7b17-4618-85f0-ffd9d3fee313"
OTHER = "11111111-2222-3333-4444-555555555555"


def lxc_env(uuid, name):
    return ("PATH=/bin\0container=lxc-libvirt\0LIBVIRT_LXC_UUID=%s\0LIBVIRT_LXC_NAME=%s\0" % (uuid, name)).encode()


def test_qemu_argv_needs_uuid_and_name():
    argv = ["/usr/bin/qemu-system-x86_64", "-name", "guest=vm1,debug-threads=on", "-uuid", UUID]
    assert P._is_emulator_of(argv, UUID, "vm1")
    assert P._is_emulator_of(argv, UUID, None)
    assert not P._is_emulator_of(argv, UUID, "vm2")
    assert not P._is_emulator_of(argv, OTHER, "vm1")
    assert not P._is_emulator_of(["qemu", "-uuid"], UUID, None)


def test_lxc_controller_argv_by_name():
    argv = ["/usr/lib/libvirt/libvirt_lxc", "--name", "ct1", "--console", "27", "--security=none"]
    assert P._is_lxc_controller_of(argv, "ct1")
    assert not P._is_lxc_controller_of(argv, "ct")                  # whole names only
    assert not P._is_lxc_controller_of(argv, None)
    assert P._is_lxc_controller_of(["libvirt_lxc", "--name=ct1"], "ct1")
    assert not P._is_lxc_controller_of(["/bin/sh", "-c", "libvirt_lxc --name ct1"], "ct1")
    assert not P._is_lxc_controller_of(["/usr/lib/libvirt/libvirt_lxc", "--name"], "ct1")


def test_lxc_environ_needs_uuid_and_name():
    assert P.lxc_environ_matches(lxc_env(UUID, "ct1"), UUID, "ct1")
    assert P.lxc_environ_matches(lxc_env(UUID, "ct1"), UUID, None)
    assert not P.lxc_environ_matches(lxc_env(UUID, "ct1"), UUID, "ct")
    assert not P.lxc_environ_matches(lxc_env(OTHER, "ct1"), UUID, "ct1")
    assert not P.lxc_environ_matches(b"", UUID, "ct1")
    assert not P.lxc_environ_matches(b"XLIBVIRT_LXC_UUID=" + UUID.encode(), UUID, None)


class FakeProcs:
    """A process table standing in for pyra.host.processes and /proc/PID/environ."""

    def __init__(self, monkeypatch):
        self.procs = {}   # pid -> dict(argv, env, parent, start)
        self.signals = []
        monkeypatch.setattr(P.processes, "find_by_cmdline",
                            lambda pred: [p for p, d in self.procs.items() if pred(d["argv"])])
        monkeypatch.setattr(P.processes, "cmdline", lambda pid: self.procs.get(pid, {}).get("argv", []))
        monkeypatch.setattr(P.processes, "alive", self.alive)
        monkeypatch.setattr(P.processes, "children",
                            lambda pid: [p for p, d in self.procs.items() if d["parent"] == pid])
        monkeypatch.setattr(P.processes, "start_time", lambda pid: self.procs[pid]["start"] if pid in self.procs
                            else None)
        monkeypatch.setattr(P.processes, "signal_pids", self.signal_pids)
        monkeypatch.setattr(P, "_environ", lambda pid: self.procs.get(pid, {}).get("env", b""))

    def add(self, pid, argv, env=b"", parent=1, start=100, on=None):
        self.procs[pid] = {"argv": argv, "env": env, "parent": parent, "start": start, "on": on or {}}

    def alive(self, pid, started=None):
        d = self.procs.get(pid)
        return d is not None and (started is None or d["start"] == started)

    def signal_pids(self, pids, signum):
        sent = []
        for pid in pids:
            if pid in self.procs:
                self.signals.append((pid, signum))
                sent.append(pid)
                effect = self.procs[pid]["on"].get(signum)
                if effect:
                    effect()
        return sent


@pytest.fixture
def procs(monkeypatch):
    return FakeProcs(monkeypatch)


def container(procs, ctl=200, init=201, name="ct1", uuid=UUID, init_on=None):
    procs.add(ctl, ["/usr/lib/libvirt/libvirt_lxc", "--name", name, "--console", "27"])
    procs.add(init, ["/sbin/init"], env=lxc_env(uuid, name), parent=ctl, on=init_on)


def test_emulator_pids_finds_the_lxc_controller_only_with_its_init(procs):
    container(procs)
    procs.add(300, ["/usr/lib/libvirt/libvirt_lxc", "--name", "ct1"])         # same name, no init: not it
    container(procs, ctl=400, init=401, name="ct1", uuid=OTHER)               # same name, other UUID: not it
    assert P.emulator_pids(UUID, "ct1") == [200]
    assert P.emulator_pids(OTHER, "ct1") == [400]
    assert P.emulator_pids(UUID, "ct2") == []
    assert P.emulator_pids(None, "ct1") == []


def test_emulator_pids_qemu_unchanged(procs):
    procs.add(500, ["qemu-system-x86_64", "-name", "guest=vm1", "-uuid", UUID])
    procs.add(501, ["qemu-system-x86_64", "-name", "guest=vm2", "-uuid", OTHER])
    assert P.emulator_pids(UUID, "vm1") == [500]
    assert P.emulator_pids(UUID) == [500]


def test_kill_lxc_kills_the_init_first_and_the_controller_exits_with_it(procs):
    def init_dies():
        del procs.procs[201]
        del procs.procs[200]          # the controller exits when its init does
    container(procs, init_on={P.SIGTERM: init_dies})
    assert P.kill_emulator(UUID, "ct1", Deadline(5.0))
    assert procs.signals == [(201, P.SIGTERM)]                                 # never the controller first


def test_kill_lxc_init_ignoring_sigterm_gets_sigkill_even_once_orphaned(procs):
    def controller_dies():
        del procs.procs[200]
        procs.procs[201]["parent"] = 1                                          # re-parented to PID 1
    def init_dies():
        del procs.procs[201]
    # the init ignores SIGTERM, and meanwhile its controller goes away (killed by someone else): the init,
    # no longer anyone's child a scan could find, is still remembered from the first scan and gets SIGKILL
    container(procs, init_on={P.SIGTERM: controller_dies, P.SIGKILL: init_dies})
    assert P.emulator_pids(UUID, "ct1") == [200]
    assert P.kill_emulator(UUID, "ct1", Deadline(2.0))
    assert P.emulator_pids(UUID, "ct1") == []
    assert (201, P.SIGTERM) in procs.signals and (201, P.SIGKILL) in procs.signals
    assert 201 not in procs.procs


def test_kill_reports_a_survivor(procs):
    container(procs)                                                            # ignores everything
    assert not P.kill_emulator(UUID, "ct1", Deadline(0.6))
    assert (201, P.SIGKILL) in procs.signals
