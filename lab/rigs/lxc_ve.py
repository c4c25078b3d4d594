"""LXC rig for the ManageVE tests: busybox containers and simulated cluster "nodes".

Owns:
- ``make_container(name, ...)``: a busybox LXC container (``lxc-create -t busybox``) in the ve lxcpath
  ``/var/tmp/pyra-ve/lxc`` (never the system ``/var/lib/lxc``), with the config fixes this machine needs
  (loopback-only network, no AppArmor lines, no tty masters, no host /lib bind mounts, an rcS without
  udhcpc) and a workload that writes an increasing counter to /tmp/counter every 0.2 s.
  ``halt_ignored=True`` sets ``lxc.signal.halt = SIGURG``, which busybox init ignores, so ``lxc-stop -t N``
  has to kill it when the timeout runs out.
- ``Node``: a "cluster node" = network namespace ``ve-nX`` + a persistent mount namespace with a private
  tmpfs on /run/lxc. LXC's command socket is abstract, hence per network namespace: a container started
  on one node looks STOPPED from another, as on two machines sharing storage.
- ``destroy(name)`` and ``cleanup()``: stop by ``lxc-stop -k`` (never by killing processes by name).

Every command runs with a timeout. Names must start with ``pyra-ve-``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from lab import nsbind

LXCPATH = Path(os.environ.get("PYRA_VE_LXCPATH", "/var/tmp/pyra-ve/lxc"))
NSDIR = Path("/run/pyra-ve/ns")

RCS = "#!/bin/sh\n/bin/mount -a 2>/dev/null\n"
COUNTER = """#!/bin/sh
# pyra-ve workload: an increasing counter (continues after checkpoint/restore, restarts after a reboot)
i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done
"""
INITTAB = "::sysinit:/etc/init.d/rcS\n::respawn:/bin/vecounter\n::shutdown:/bin/true\n"


class RigError(RuntimeError):
    pass


def run(argv, timeout=30, check=True, node=None):
    if node is not None:
        argv = node.wrap(argv)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RigError(f"{' '.join(argv)} -> {r.returncode}: {r.stderr.strip()[-400:]}")
    return r


def _check_name(name):
    if not name.startswith("pyra-ve-"):
        raise RigError(f"container names must start with pyra-ve-: {name}")


def make_container(name, halt_ignored=False, lxcpath=LXCPATH, force=False):
    """Create (or re-configure) a busybox container; returns its config path."""
    _check_name(name)
    lxcpath = Path(lxcpath)
    lxcpath.mkdir(parents=True, exist_ok=True)
    conf = lxcpath / name / "config"
    if conf.exists() and force:
        destroy(name, lxcpath)
    if not conf.exists():
        run(["lxc-create", "-P", str(lxcpath), "-t", "busybox", "-n", name], timeout=120)
    lines = []
    for line in conf.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key.startswith("lxc.apparmor.") or key.startswith("lxc.net.") or key in ("lxc.signal.halt",):
            continue
        if key == "lxc.tty.max":
            line = "lxc.tty.max = 0"
        if key == "lxc.mount.entry" and line.split("=", 1)[1].split()[0] in ("/lib", "/usr/lib", "/lib64", "/usr/lib64"):
            continue
        if line.startswith("# pyra-ve"):
            continue
        lines.append(line)
    lines += ["# pyra-ve", "lxc.net.0.type = empty"]
    if halt_ignored:
        lines.append("lxc.signal.halt = SIGURG")
    conf.write_text("\n".join(lines) + "\n")
    root = lxcpath / name / "rootfs"
    (root / "etc/init.d/rcS").write_text(RCS)
    (root / "bin/vecounter").write_text(COUNTER)
    (root / "etc/inittab").write_text(INITTAB)
    os.chmod(root / "etc/init.d/rcS", 0o755)
    os.chmod(root / "bin/vecounter", 0o755)
    return conf


def config_file_container(name, tmp_path):
    """A container known only by its config file (``lxc_config``, started with ``lxc-start -f``): its config
    copied to ``tmp_path``/ct.conf and an empty lxcpath beside it. Returns (agent params, lxcpath, config)."""
    conf = make_container(name, force=True)
    other = Path(tmp_path) / "lxcpath"
    other.mkdir()
    cfg = Path(tmp_path) / "ct.conf"
    cfg.write_text(conf.read_text())
    return {"veid": name, "runtime": "lxc", "lxc_path": str(other), "lxc_config": str(cfg)}, other, cfg


def state(name, lxcpath=LXCPATH, node=None):
    r = run(["lxc-info", "-P", str(lxcpath), "-n", name, "-sH"], check=False, node=node, timeout=10)
    return r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode}"


def init_pid(name, lxcpath=LXCPATH, node=None):
    r = run(["lxc-info", "-P", str(lxcpath), "-n", name, "-pH"], check=False, node=node, timeout=10)
    out = r.stdout.strip()
    return int(out) if out.isdigit() else None


def counter(name, lxcpath=LXCPATH):
    """The workload counter, read through /proc/<init>/root is not needed: the rootfs is a plain dir,
    but /tmp in the busybox container is on the rootfs too."""
    try:
        return int((Path(lxcpath) / name / "rootfs/tmp/counter").read_text().strip() or 0)
    except (OSError, ValueError):
        return None


def next_counter(name, seen, timeout=60.0, lxcpath=LXCPATH):
    """The workload counter once it differs from ``seen`` (None: once it exists), or None after ``timeout``
    seconds. Waits on the workload itself rather than a fixed sleep, so a busy machine only makes it slower.
    The first change after a restore tells a continued workload (seen + 1) from a restarted one (1)."""
    deadline = time.monotonic() + timeout
    while True:
        value = counter(name, lxcpath)
        if value is not None and value != seen:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def stop(name, lxcpath=LXCPATH, node=None):
    run(["lxc-stop", "-P", str(lxcpath), "-n", name, "-k"], check=False, node=node, timeout=30)


def destroy(name, lxcpath=LXCPATH, nodes=()):
    _check_name(name)
    for n in (None, *nodes):
        stop(name, lxcpath, node=n)
    if (Path(lxcpath) / name).exists():
        run(["lxc-destroy", "-P", str(lxcpath), "-n", name], check=False, timeout=60)
        shutil.rmtree(Path(lxcpath) / name, ignore_errors=True)


class Node:
    """A simulated cluster node: netns ``ve-<n>`` plus a mount namespace with its own /run/lxc."""

    def __init__(self, name):
        if not name.startswith("ve-"):
            raise RigError("node names must start with ve-")
        self.name = name
        self.mntns = NSDIR / f"mnt-{name}"
        self.netns = Path("/run/netns") / name

    def wrap(self, argv):
        return ["nsenter", f"--mount={self.mntns}", f"--net={self.netns}", "--", *argv]

    def up(self):
        if not self.netns.exists():
            run(["ip", "netns", "add", self.name])
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        NSDIR.mkdir(parents=True, exist_ok=True)
        if not _is_mountpoint(NSDIR):
            run(["mount", "--bind", str(NSDIR), str(NSDIR)])
            run(["mount", "--make-private", str(NSDIR)])
        if not _is_mountpoint(self.mntns):
            self.mntns.touch()
            argv = ["nsenter", f"--net={self.netns}", "unshare", f"--mount={self.mntns}", "--propagation", "private",
                    "sh", "-c", "mkdir -p /run/lxc && mount -t tmpfs -o mode=0755,size=16m pyra-ve-run-lxc /run/lxc"]
            r = nsbind.run(argv, lambda a: run(a, check=False))
            if r.returncode != 0:
                raise RigError(f"{' '.join(argv)} -> {r.returncode}: {r.stderr.strip()[-400:]}")
        return self

    def down(self):
        if _is_mountpoint(self.mntns):
            run(["umount", str(self.mntns)], check=False)
        if self.mntns.exists():
            self.mntns.unlink()
        if self.netns.exists():
            run(["ip", "netns", "del", self.name], check=False)


def _is_mountpoint(path):
    path = str(path)
    try:
        with open("/proc/self/mountinfo") as fh:
            return any(line.split()[4] == path for line in fh)
    except OSError:
        return False


def cleanup(names=(), nodes=()):
    for name in names:
        destroy(name, nodes=nodes)
    for node in nodes:
        node.down()
    if nodes and _is_mountpoint(NSDIR) and not any(NSDIR.iterdir()):
        run(["umount", str(NSDIR)], check=False)
