"""Fault injection for LVMFilesystem on the host tier (issue 8): a full filesystem, lvm/mount/umount that hang
forever, and the agent itself SIGKILLed mid-start and mid-stop. Real ext4 on real LVM metadata on loop devices;
only device-mapper's kernel step is the stand-in (lab/dmstandin), as in test_lvmfilesystem_host.py.

A copy of the mount left in another mount namespace (one made with private propagation while the filesystem was
mounted: `unshare -m`, or libvirt's per-QEMU namespace on a host whose / is not shared) keeps the LV open after
the local unmount; stop lets go of it there, or names it.

A hanging tool is a wrapper placed first on PATH that ignores SIGTERM and sleeps: the agent's command runner
must cut it at the operation's deadline (SIGKILL to its process group) and the action must end in time with a
reason naming what hung.
"""
import os
import subprocess
import time

import pytest

import faultkit
from harness import run_agent
from lab.rigs import lvm_rig
from lab.rigs.lvm_rig import FAKE_DM, mounted

pytestmark = [pytest.mark.root, pytest.mark.faults]

AGENT = "LVMFilesystem"
VG = "pyra_lvm_flt"


@pytest.fixture(scope="module")
def rig():
    r = lvm_rig.Rig("faults")
    try:
        d = r.pv("d1", "300M")
        a = r.node("a", system_id="nodeA")
        a.vgcreate(VG, d)
        for lv in ("full", "hang", "killed", "fsck", "copy"):
            a.lvcreate(VG, lv, "32M")
            a.mkfs(VG, lv, "ext4")
        yield r
    finally:
        r.cleanup()


def params(rig, lv, **extra):
    p = {"vgname": VG, "lvname": lv, "directory": str(rig.work / "mnt" / lv), "stop_signals": "TERM:1 KILL:2"}
    p.update(extra)
    return p


def agent(rig, action, p, env=None, **kw):
    n = rig.nodes["a"]
    return run_agent(n.agent(AGENT), action, p, rsctmp=str(n.rsctmp), instance="flt-" + p["lvname"],
                     env=dict(n.env(), **(env or {})), **kw)


def hanging(rig, tool, only=None):
    """``tool`` that hangs (ignoring SIGTERM) for every call, or only when its first argument is ``only`` (e.g.
    lvm's ``lvchange``; other calls go to the stand-in / real tool), first on PATH. Returns (env, wrapper)."""
    d = rig.work / ("hang-" + tool + ("-" + only if only else ""))
    d.mkdir(exist_ok=True)
    real = str(FAKE_DM / "lvm") if tool == "lvm" else "/bin/" + tool
    if not os.path.exists(real):
        real = "/sbin/" + tool
    wrapper = faultkit.hanging_tool(d / tool, real, only)
    return {"PATH": "%s:%s:/usr/sbin:/usr/bin:/sbin:/bin" % (d, FAKE_DM)}, wrapper


# ------------------------------------------------------------------------------------ filesystem full
def test_filesystem_full_is_degraded_not_failed(rig):
    """Full (no block left for users): depth 20 says 190 with a reason; depth 0 and 10 still 0; freeing space
    makes it 0 again. A restart (rc 1) could not free a byte."""
    p = params(rig, "full")
    assert agent(rig, "start", p).rc == 0
    try:
        filler = os.path.join(p["directory"], "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M", "count=64"], capture_output=True,
                       timeout=60)
        st = os.statvfs(p["directory"])
        assert st.f_bavail == 0, "the filesystem did not fill up"
        r = agent(rig, "monitor", p, interval=10000, check_level=20)
        assert r.rc == 190 and "full" in r.exit_reason, r
        for level in (0, 10):
            assert agent(rig, "monitor", p, interval=10000, check_level=level).rc == 0
        os.unlink(filler)
        os.sync()
        r = agent(rig, "monitor", p, interval=10000, check_level=20)
        assert r.rc == 0, r
    finally:
        assert agent(rig, "stop", p).rc == 0
    assert not mounted(p["directory"])


# ------------------------------------------------------------------------------------ hanging tools
def test_hanging_lvm_bounds_start(rig):
    env, d = hanging(rig, "lvm")
    p = params(rig, "hang")
    r = agent(rig, "start", p, env=env, timeout_ms=6000)
    assert r.rc == 1 and not r.killed and r.elapsed < 6.0, r
    assert "lvm" in r.exit_reason and ("time" in r.exit_reason or "deadline" in r.exit_reason), r
    faultkit.hung_wrappers_gone(d)
    assert rig.nodes["a"].device(VG, "hang") is None and not mounted(p["directory"])
    assert agent(rig, "stop", p).rc == 0                                 # Pacemaker's stop after the failure


def test_hanging_deactivation_fails_stop_in_time(rig):
    """lvchange -an hangs after the unmount: stop fails before its deadline (Pacemaker fences: the LV may still
    be active here); the next stop with a working lvm finishes the job."""
    p = params(rig, "hang")
    assert agent(rig, "start", p).rc == 0
    env, d = hanging(rig, "lvm", only="lvchange")
    r = agent(rig, "stop", p, env=env, timeout_ms=6000)
    assert r.rc == 1 and not r.killed and r.elapsed < 6.0, r
    assert "lvchange" in r.exit_reason or "deactivat" in r.exit_reason, r
    faultkit.hung_wrappers_gone(d)
    assert not mounted(p["directory"])                                   # the unmount had happened
    r = agent(rig, "monitor", p, interval=10000)
    assert r.rc != 7, r                                                  # the LV is still active: not "stopped"
    assert agent(rig, "stop", p).rc == 0
    assert rig.nodes["a"].device(VG, "hang") is None


def test_hanging_mount_bounds_start(rig):
    env, d = hanging(rig, "mount")
    p = params(rig, "hang")
    r = agent(rig, "start", p, env=env, timeout_ms=6000)
    assert r.rc == 1 and not r.killed and r.elapsed < 6.0, r
    assert "mount" in r.exit_reason, r
    faultkit.hung_wrappers_gone(d)
    assert agent(rig, "stop", p).rc == 0
    assert rig.nodes["a"].device(VG, "hang") is None and not mounted(p["directory"])


def test_hanging_umount_fails_stop_in_time(rig):
    p = params(rig, "hang")
    assert agent(rig, "start", p).rc == 0
    env, d = hanging(rig, "umount")
    r = agent(rig, "stop", p, env=env, timeout_ms=6000)
    assert r.rc == 1 and not r.killed and r.elapsed < 6.0, r
    assert "unmount" in r.exit_reason or "umount" in r.exit_reason, r
    faultkit.hung_wrappers_gone(d)
    assert mounted(p["directory"])
    assert agent(rig, "monitor", p, interval=10000).rc == 0              # still mounted and active: running
    assert agent(rig, "stop", p).rc == 0
    assert not mounted(p["directory"])


# ------------------------------------------------------------------------------------ the agent killed
def spawn(rig, action, p, env=None, timeout_ms=30000):
    n = rig.nodes["a"]
    return faultkit.spawn(n.agent(AGENT), action, p, str(n.rsctmp), "flt-" + p["lvname"], timeout_ms=timeout_ms,
                          env=dict(n.env(), **(env or {})))


def state_lines(rig, p):
    return faultkit.state_lines(str(rig.nodes["a"].rsctmp), AGENT, "flt-" + p["lvname"])


def test_agent_killed_mid_stop_then_stop_again(rig):
    """SIGKILL the agent while it waits for a holder that ignores TERM: nothing half-done is reported as done;
    the re-run stop kills the holder, unmounts and deactivates."""
    p = params(rig, "killed", stop_signals="TERM:20 KILL:2")
    assert agent(rig, "start", p).rc == 0
    h = rig.holder(p["directory"], ignore_term=True)
    faultkit.kill_group(spawn(rig, "stop", p, timeout_ms=60000), after=1.5)
    assert h.poll() is None and mounted(p["directory"])
    assert "phase=started" in state_lines(rig, p)
    assert agent(rig, "monitor", p, interval=10000).rc == 0
    r = agent(rig, "stop", dict(p, stop_signals="TERM:1 KILL:2"))
    assert r.rc == 0, r
    assert h.wait(5) == -9
    assert not mounted(p["directory"]) and rig.nodes["a"].device(VG, "killed") is None
    assert state_lines(rig, p) is None
    assert agent(rig, "monitor", p, interval=10000).rc == 7


def test_agent_killed_mid_start_then_start_again(rig):
    """SIGKILL the agent during a slow fsck (the LV is active, nothing mounted): the record says "started", a
    monitor says failed (not "stopped"), and the re-run start converges."""
    slow = rig.work / "slow-fsck"
    slow.mkdir(exist_ok=True)
    (slow / "fsck").write_text("#!/bin/sh\necho $$ >> %s/pids\nsleep 5\nexec /sbin/fsck \"$@\"\n" % slow)
    (slow / "fsck").chmod(0o755)
    env = {"PATH": "%s:%s:/usr/sbin:/usr/bin:/sbin:/bin" % (slow, FAKE_DM)}
    p = params(rig, "fsck", run_fsck="force")
    proc = spawn(rig, "start", p, env=env)
    end = time.monotonic() + 20
    while not (slow / "pids").exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert (slow / "pids").exists(), "fsck never started"
    faultkit.kill_group(proc)
    assert rig.nodes["a"].device(VG, "fsck") is not None and not mounted(p["directory"])
    assert "phase=started" in state_lines(rig, p)
    r = agent(rig, "monitor", p, interval=10000)
    assert r.rc == 1, r                                                  # half-started: a failure, not 7
    r = agent(rig, "start", p)
    assert r.rc == 0, r
    assert mounted(p["directory"])
    assert agent(rig, "monitor", p, interval=10000, check_level=20).rc == 0
    assert agent(rig, "stop", p).rc == 0
    assert state_lines(rig, p) is None


# ------------------------------------------------------------------------ a copy in another mount namespace
def in_private_copy(rig, script):
    """A process in a new mount namespace with private propagation made from node a's while the filesystem is
    mounted (what `unshare -m` does; libvirt's per-QEMU namespace on a host whose / is private), running
    ``script`` (sh) there. Returns the Popen once it is ready."""
    n = rig.nodes["a"]
    p = subprocess.Popen(n.ns + ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                                 script + "; echo ready; exec sleep 3600"],
                         stdout=subprocess.PIPE, text=True)
    rig.pids.append(p)
    assert p.stdout.readline().strip() == "ready"
    return p


def mounted_in(pid, path):
    with open("/proc/%d/mountinfo" % pid) as f:
        return any(line.split()[4] == path for line in f)


def test_unused_copy_in_a_private_namespace_is_released_and_its_owner_kept(rig):
    """Soak seed 5 (issue 15): the LV stayed "in use" after the unmount, for as long as a guest started during
    the mount lived, and the stop failed into a fence. The copy nothing uses is unmounted where it is; the
    process that owns the namespace goes on."""
    p = params(rig, "copy")
    assert agent(rig, "start", p).rc == 0
    holder = in_private_copy(rig, "true")
    assert mounted_in(holder.pid, p["directory"])
    r = agent(rig, "stop", p)
    assert r.rc == 0, r
    assert rig.nodes["a"].device(VG, "copy") is None
    assert holder.poll() is None, "the namespace's owner was signalled"
    assert not mounted_in(holder.pid, p["directory"])
    assert "released the copy of the mount held by the mount namespace of pid" in r.stderr
    lvm_rig.kill(holder)


def test_busy_copy_is_named_and_its_users_signalled_only_when_allowed(rig):
    """A copy in use in its namespace (a shell whose cwd is in it): force_unmount=false fails the stop with the
    namespace named and nothing signalled; the default signals the users there, in stages, and stops."""
    p = params(rig, "copy")
    assert agent(rig, "start", p).rc == 0
    holder = in_private_copy(rig, "trap '' TERM; cd '%s'" % p["directory"])
    r = agent(rig, "stop", dict(p, force_unmount="false"))
    assert r.rc == 1, r
    assert "still mounted by the mount namespace of pid %d" % holder.pid in r.exit_reason, r
    assert holder.poll() is None and rig.nodes["a"].device(VG, "copy") is not None
    r = agent(rig, "stop", p)
    assert r.rc == 0, r
    assert holder.wait(10) == -9  # TERM ignored, KILL in the second stage
    assert rig.nodes["a"].device(VG, "copy") is None


def test_exit_reason_names_who_holds_the_device(rig):
    """A process holding the active LV's device (exclusively, as a mount does) with no directory to unmount:
    the stop fails once the deactivation retries run out, and the exit reason says which process it is."""
    p = {"vgname": VG, "lvname": "copy"}
    assert agent(rig, "start", p).rc == 0
    n = rig.nodes["a"]
    code = ("import os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)\n"
            "print('ready', flush=True)\n"
            "os.read(0, 1)\n")
    path = "/dev/mapper/%s-copy" % VG
    holder = subprocess.Popen(n.ns + ["/usr/bin/python3", "-c", code, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    rig.pids.append(holder)
    assert holder.stdout.readline().strip() == "ready"
    r = agent(rig, "stop", p, timeout_ms=6000)
    assert r.rc == 1, r
    assert "cannot deactivate %s/copy: in use by pid %d (python3)" % (VG, holder.pid) in r.exit_reason, r
    lvm_rig.kill(holder)
    assert agent(rig, "stop", p).rc == 0
