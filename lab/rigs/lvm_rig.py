"""Host-tier storage rig for LVMFilesystem: loop-device PVs with real LVM metadata, per-"node" private LVM
configurations (system ID, volume_list tags, lvmlockd), the device-mapper stand-in (lab/dmstandin), ext4/xfs
filesystems, and holder processes that ignore SIGTERM.

Everything lives under /var/tmp/pyra-lvm/<rig> and /run/pyra-lvm/<rig>; VG names start with pyra_lvm_.
Loop devices are attached with `losetup -f --show`, recorded, and detached only if still backed by our files.
Processes started here are killed by PID only.  The real LVM commands run with a private LVM_SYSTEM_DIR
whose global_filter accepts only our loop devices, so other users of the machine are never scanned.

Each node has a persistent mount namespace (bound on /run/pyra-lvm/<rig>/ns/<node>.mnt) where the stand-in
plays device-mapper (/dev/mapper and /sys/dev/block of its own, lab.dmstandin); ``Node.agent(name)`` is the
agent's path as the tests run it (a wrapper that enters that namespace) and ``Node.lvm`` runs lvm there.
<rig>/mnt is a shared mount whose copy in every node namespace is its peer: what the agent mounts below it is
mounted on the host too (the tests look, hold files open and unmount from the host), and the other way round.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import dmstandin

ROOT = Path(__file__).resolve().parents[2]
FAKE_DM = Path(dmstandin.DIR)
WORK = Path("/var/tmp/pyra-lvm")
RUN = Path("/run/pyra-lvm")
REAL_LVM = "/sbin/lvm"
NO_ACT = ["--config", "global/activation=0"]


def sh(argv, check=True, env=None, timeout=120, input=None):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=timeout,
                       input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: rc {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def loop_backing(dev):
    r = sh(["losetup", "-n", "-O", "BACK-FILE", dev], check=False)
    return r.stdout.strip()


class Rig:
    """One rig = one work dir, its loop devices, nodes, mounts and processes."""

    def __init__(self, name="rig"):
        # one dir per process: the whole suite may run while a developer runs these tests
        self.name = "%s-%d" % (name, os.getpid())
        self.work = WORK / self.name
        self.run = RUN / self.name
        for stale in list(WORK.glob(name + "-*")) if WORK.exists() else []:
            pid = stale.name.rsplit("-", 1)[1]
            if pid.isdigit() and not os.path.exists("/proc/" + pid):
                _cleanup_dirs(stale, RUN / stale.name)
        self.cleanup()
        self.work.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        # mount points of the agent (shared with every node namespace) and the nodes' namespace files (private)
        self.mnt = self.work / "mnt"
        self.nsdir = self.run / "ns"
        for d, kind in ((self.mnt, "--make-shared"), (self.nsdir, "--make-private")):
            d.mkdir()
            sh(["mount", "--bind", d, d])
            sh(["mount", "--make-private", d])
            sh(["mount", kind, d])
        self.loops: list[str] = []
        self.pids: list[subprocess.Popen] = []
        self.pvs: list[str] = []
        self.nodes: dict[str, Node] = {}
        self.lockd: subprocess.Popen | None = None

    # ---- loop devices -------------------------------------------------------------------------------
    def attach(self, path, extra=()):
        dev = sh(["losetup", "-f", "--show", *extra, path]).stdout.strip()
        self.loops.append(dev)
        with open(self.work / "loops", "a") as f:
            f.write(dev + "\n")
        return dev

    def image(self, name, size="600M"):
        path = self.work / f"{name}.img"
        if path.exists():
            path.unlink()
        sh(["truncate", "-s", size, path])
        return path

    def pv(self, name, size="600M"):
        """A new loop-backed disk (not yet a PV: vgcreate makes it one)."""
        dev = self.attach(self.image(name, size))
        self.pvs.append(dev)
        self.refresh_filters()
        return dev

    # ---- nodes ----------------------------------------------------------------------------------------
    def node(self, name, system_id=None, volume_list=None, lvmlockd=False):
        n = Node(self, name, system_id, volume_list, lvmlockd)
        self.nodes[name] = n
        return n

    def refresh_filters(self):
        for n in self.nodes.values():
            n.write_config()

    # ---- lvmlockd --test (fake lock manager, real client <-> lvmlockd protocol) -----------------------
    def start_lockd(self):
        sock = self.work / "lvmlockd.sock"
        pidf = self.work / "lvmlockd.pid"
        env = dict(os.environ, LVM_LVMLOCKD_SOCKET=str(sock))
        log = open(self.work / "lvmlockd.log", "w")
        self.lockd = subprocess.Popen(["lvmlockd", "-D", "-T", "-g", "dlm", "-p", str(pidf)], env=env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pids.append(self.lockd)
        for _ in range(100):
            if sock.exists() and pidf.exists():
                return
            time.sleep(0.05)
        raise RuntimeError(f"lvmlockd did not start: {(self.work / 'lvmlockd.log').read_text()}")

    def stop_lockd(self):
        """Stop our lvmlockd (it ignores TERM while lockspaces exist; --stop-lockspaces blocks while LV locks
        are held), by its PID only."""
        if not self.lockd or self.lockd.poll() is not None:
            return
        n = next((n for n in self.nodes.values() if n.lvmlockd), None)
        if n:
            try:
                n.in_ns(["lvmlockctl", "--quit"], check=False, timeout=5)
                self.lockd.wait(3)
            except subprocess.TimeoutExpired:
                pass
        if self.lockd.poll() is None:
            self.lockd.kill()
            self.lockd.wait(5)

    # ---- holders --------------------------------------------------------------------------------------
    def holder(self, path, ignore_term=True, how="cwd"):
        """A process holding `path` busy: cwd inside it, or an open file in it.  Returns the Popen."""
        code = ("import os, signal, sys, time\n"
                f"{'signal.signal(signal.SIGTERM, signal.SIG_IGN)' if ignore_term else ''}\n"
                "p = sys.argv[1]\n"
                "f = open(os.path.join(p, '.pyra-lvm-holder'), 'w') if sys.argv[2] == 'fd' else os.chdir(p)\n"
                "print('ready', flush=True)\n"
                "time.sleep(3600)\n")
        p = subprocess.Popen([sys.executable, "-c", code, str(path), how], stdout=subprocess.PIPE, text=True)
        self.pids.append(p)
        assert p.stdout.readline().strip() == "ready"
        return p

    # ---- cleanup --------------------------------------------------------------------------------------
    def cleanup(self):
        for p in getattr(self, "pids", []):
            if p.poll() is None:
                p.kill()
                p.wait(5)
        if getattr(self, "lockd", None):
            self.lockd = None
        _cleanup_dirs(self.work, self.run)


def _cleanup_dirs(work, run):
    """Unmount, detach and remove everything a rig left under ``work`` and ``run``."""
    # mounts of ours (anything under our dirs, the node namespace files too), deepest first; processes holding
    # them are the rig's own
    for mnt in sorted(mounts_under((str(work), str(run))), reverse=True):
        subprocess.run(["umount", mnt], capture_output=True)
        if mnt in mounts_under((mnt,)):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
    # stand-in LV devices first (recorded in our nodes' state, over our PVs), then our PV loop devices
    loops_file = work / "loops"
    pvs = {dev for dev in (loops_file.read_text().split() if loops_file.exists() else [])
           if loop_backing(dev).startswith(str(work))}
    for state in work.glob("*/dm") if work.exists() else []:
        for dev in dmstandin.devices(state).values():
            back = loop_backing(dev)  # "/loopN" once the namespace that opened the PV is gone
            if back in pvs or "/dev" + back in pvs:
                subprocess.run(["losetup", "-d", dev], capture_output=True)
    for dev in pvs:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    dmstandin.release_mountpoint()


class Node:
    """A simulated cluster node: its own LVM config dir, HA_RSCTMP, and mount namespace where the dm stand-in
    keeps its state (``dm``: the node's /dev/mapper, as the host sees it)."""

    def __init__(self, rig: Rig, name, system_id, volume_list, lvmlockd):
        self.rig = rig
        self.name = name
        self.system_id = system_id
        self.volume_list = volume_list
        self.lvmlockd = lvmlockd
        self.etc = rig.work / f"etc-{name}"
        self.state = rig.work / name / "dm"
        self.dm = Path(dmstandin.paths(self.state)[0])
        self.rsctmp = rig.run / name / "rsctmp"
        for d in (self.etc, self.state, self.rsctmp, rig.work / "lock", rig.work / "backup", rig.work / "archive"):
            d.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.nsfile = rig.nsdir / f"{name}.mnt"
        self.ns = dmstandin.create(self.nsfile, self.state, shared=[rig.mnt])

    def write_config(self):
        w = self.rig.work
        accept = "".join(f'"a|^{d}$|", ' for d in self.rig.pvs)
        glob = [f'locking_dir = "{w}/lock"', f"use_lvmlockd = {1 if self.lvmlockd else 0}"]
        glob.append('system_id_source = "lvmlocal"' if self.system_id else 'system_id_source = "none"')
        act = ["udev_sync = 0", "udev_rules = 0", "monitoring = 0"]
        if self.volume_list is not None:
            act.append("volume_list = [ " + ", ".join(f'"{v}"' for v in self.volume_list) + " ]")
        conf = (
            "devices {\n"
            f"    global_filter = [ {accept}\"r|.*|\" ]\n"
            "    use_devicesfile = 0\n    obtain_device_list_from_udev = 0\n"
            '    external_device_info_source = "none"\n    hints = "none"\n}\n'
            "global {\n    " + "\n    ".join(glob) + "\n}\n"
            "activation {\n    " + "\n    ".join(act) + "\n}\n"
            f'backup {{\n    backup_dir = "{w}/backup"\n    archive_dir = "{w}/archive"\n}}\n')
        (self.etc / "lvm.conf").write_text(conf)
        local = f'local {{\n    system_id = "{self.system_id}"\n}}\n' if self.system_id else "local {\n}\n"
        if self.lvmlockd:
            local = local.replace("local {\n", "local {\n    host_id = 1\n")
        (self.etc / "lvmlocal.conf").write_text(local)

    def env(self):
        """Environment for the agent on this node: private LVM config, dm stand-in first on PATH."""
        e = {"LVM_SYSTEM_DIR": str(self.etc), "LVM_SUPPRESS_FD_WARNINGS": "1",
             "PATH": f"{FAKE_DM}:/usr/sbin:/usr/bin:/sbin:/bin"}
        if self.lvmlockd:
            e["LVM_LVMLOCKD_SOCKET"] = str(self.rig.work / "lvmlockd.sock")
            e["PYRA_LVMLOCKD_PIDFILE"] = str(self.rig.work / "lvmlockd.pid")
        return e

    def full_env(self):
        return dict(os.environ, **self.env())

    def in_ns(self, argv, check=True, timeout=60):
        """Run a non-lvm tool (lvmlockctl) the way the stand-in runs lvm: in the private /run namespace."""
        e = self.full_env()
        script = ('mount -t tmpfs pyra-lvm-run /run && mkdir -p /run/lvm && cp "$0" /run/lvmlockd.pid && '
                  'touch /run/lvm/lvmlockd.socket && mount --bind "$1" /run/lvm/lvmlockd.socket && shift 2 && '
                  'exec "$@"')
        return sh(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script,
                   e["PYRA_LVMLOCKD_PIDFILE"], e["LVM_LVMLOCKD_SOCKET"], "x", *argv], check=check, env=e,
                  timeout=timeout)

    def lvm(self, *args, check=True, activation=False):
        """Run lvm through the stand-in wrapper in the node's namespace (activation=False adds
        global/activation=0)."""
        argv = self.ns + [str(FAKE_DM / "lvm"), args[0], *([] if activation else NO_ACT), *args[1:]]
        return sh(argv, check=check, env=self.full_env())

    def agent(self, agent):
        """Path of an executable named like ``agent`` that runs ROOT/agents/<agent> in this node's namespace
        (nsenter execs it: same PID and process group, as the harness and ocf-tester expect). Run by another
        user than root (ocf-tester's permission check, meta-data as nobody) it runs the agent as it is."""
        path = self.rig.work / self.name / "agents" / agent
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            real = "'%s'" % (ROOT / "agents" / agent)
            ns = " ".join("'%s'" % a for a in self.ns)
            path.write_text('#!/bin/sh\n[ -O / ] || exec %s "$@"\nexec %s %s "$@"\n' % (real, ns, real))
            path.chmod(0o755)
        return str(path)

    def vgcreate(self, vg, *pvs, extra=()):
        self.rig.refresh_filters()
        return self.lvm("vgcreate", "-y", *extra, vg, *pvs)

    def lvcreate(self, vg, lv, size="320M"):
        return self.lvm("lvcreate", "-y", "-an", "-Zn", "-L", size, "-n", lv, vg)

    def activate(self, vg, lv, mode="ey"):
        return self.lvm("lvchange", f"-a{mode}", f"{vg}/{lv}", activation=True)

    def deactivate(self, vg, lv, check=True):
        return self.lvm("lvchange", "-an", f"{vg}/{lv}", activation=True, check=check)

    def device(self, vg, lv):
        """The loop device playing VG/LV on this node (a host path), or None when it is not active here."""
        return dmstandin.device(self.state, vg, lv)

    def mkfs(self, vg, lv, fstype):
        """Activate, make a filesystem, deactivate (through the stand-in)."""
        self.activate(vg, lv)
        dev = self.device(vg, lv)
        mkfs(dev, fstype)
        self.deactivate(vg, lv)


def mkfs(dev, fstype):
    if fstype == "xfs":
        sh(["mkfs.xfs", "-f", "-q", dev])
    else:
        sh([f"mkfs.{fstype}", "-F", "-q", dev])


def corrupt_ext4(dev):
    """Damage the root inode and flag the filesystem as having errors, so that `fsck -p` gives up (rc 4)."""
    sh(["debugfs", "-w", "-R", "clri <2>", dev])
    sh(["tune2fs", "-E", "force_fsck", dev])


def mark_fsck_due(dev):
    sh(["tune2fs", "-E", "force_fsck", dev])


unescape = dmstandin.unescape  # one decoder of mountinfo fields for the whole lab


def mounts_under(prefixes):
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = unescape(line.split()[4])
            if any(mp == p or mp.startswith(p.rstrip("/") + "/") for p in prefixes):
                res.append(mp)
    return res


def mounted(path):
    return str(path) in mounts_under((str(path),))


def kill(p: subprocess.Popen):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(5)
