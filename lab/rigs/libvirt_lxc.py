"""A private libvirtd node with libvirt's LXC driver (lxc:///system), and busybox containers for it.

Builds on lab.rigs.libvirt_node (a systemd-less libvirtd in its own mount and UTS namespace under the child
reaper); what differs for LXC:
- its own run/work dirs (PYRA_TD_LXC_RUN, default /run/pyra-td-lxc; PYRA_TD_LXC_WORK, default
  /var/tmp/pyra-td-lxc), so it never shares a directory with the QEMU nodes;
- clients on the host reach it as lxc+unix:///system?socket=<node>/run/libvirt-sock; agents run "on" the node
  use hypervisor=lxc:///system;
- lxc.conf: security_driver "none" (no AppArmor/SELinux in this kernel);
- guests are containers: <os><type>exe</type><init>/sbin/init</init></os> over a <filesystem type='mount'>
  root built from busybox-static (one root per container, ~2 MB).

libvirt-LXC without systemd puts each container in cgroup v1 groups of its own under the libvirtd's cgroup
(/machine/<name>.libvirt-lxc): this host has cgroup v1 (memory, devices, cpuacct, ... mounted) and no
systemd-machined, which libvirt then simply does not use.

Container behaviours (``init=`` of container_xml / make_root):
- "busybox": busybox init; SIGTERM (libvirt-LXC's signal shutdown) makes it run its shutdown actions, the
  last of which is `poweroff -f`: reboot(RB_POWER_OFF) in a PID namespace ends the init as a power-off and
  libvirt-LXC ends the domain; rcS appends to /run/booted in the container root at every boot (``booted``);
- "rebooter": the same without the power-off: busybox init reboots on SIGTERM, and libvirt-LXC restarts the
  container (it does not apply on_reboot=destroy), so it never goes away by itself;
- "deaf": /bin/sh as PID 1 with no handler: a PID-namespace init ignores SIGTERM, so libvirt's graceful
  shutdown does nothing and only destroy (SIGKILL) ends it.

libvirt-LXC's default shutdown (and initctl) did not signal a busybox init at all here (libvirt 9.0: no
/dev/initctl in the container, the call returns 0, no SIGTERM is sent); the signal mode does.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid as uuidlib
from pathlib import Path

from lab.rigs import libvirt_node as L

BASE = Path(os.environ.get("PYRA_TD_LXC_RUN", "/run/pyra-td-lxc"))
WORK = Path(os.environ.get("PYRA_TD_LXC_WORK", "/var/tmp/pyra-td-lxc"))
BUSYBOX = "/bin/busybox"
CONTROLLER = "/usr/lib/libvirt/libvirt_lxc"


def private_run_dir() -> None:
    """As libvirt_node.private_run_dir, for BASE (namespace files must be on a private mount)."""
    BASE.mkdir(parents=True, exist_ok=True)
    if not L._is_mountpoint(BASE):
        L._run(["mount", "--bind", str(BASE), str(BASE)])
    L._run(["mount", "--make-private", str(BASE)])


def release_run_dir() -> None:
    mounts = L._mountpoints()
    if str(BASE) in mounts and not any(m.startswith(str(BASE) + "/") for m in mounts):
        L._run(["umount", str(BASE)], check=False)


class LxcNode(L.Node):
    """A libvirt_node.Node whose libvirtd serves lxc:///system, in BASE/<name>."""

    def __init__(self, name: str):
        super().__init__(name)
        self.dir = BASE / name
        self.sock = self.dir / "run" / "libvirt-sock"
        self.uri = f"lxc+unix:///system?socket={self.sock}"
        self.mntns = self.dir / "mntns"
        self.utsns = self.dir / "utsns"

    def _write_config(self) -> None:
        super()._write_config()
        (self.dir / "etc" / "lxc.conf").write_text('security_driver = "none"\n')
        (self.dir / "etc" / "libvirt.conf").write_text('uri_default = "lxc:///system"\n')
        (self.dir / "log" / "lxc").mkdir(exist_ok=True)

    def start(self, timeout: float = 60.0) -> "LxcNode":
        if not self.has_namespaces():
            private_run_dir()
        # the base class makes its own BASE private before creating namespace files: ours is BASE here
        orig, L.private_run_dir = L.private_run_dir, private_run_dir
        try:
            super().start(timeout)
        finally:
            L.private_run_dir = orig
        self._hide_unified_cgroup()
        return self

    def _hide_unified_cgroup(self) -> None:
        """libvirt 9.0 cannot start a container on a hybrid cgroup host: its v2 backend bind-mounts first,
        before the v1 backend has put a tmpfs on the container's /sys/fs/cgroup ("virCgroupV2BindMount:
        Unable to create directory /sys/fs/cgroup/unified: No such file or directory"). The unified
        hierarchy holds no controller here (all are v1), so the node's mount namespace simply does not
        have it: unmounted there only (private propagation), the host keeps it."""
        if "/sys/fs/cgroup/unified" in self.run(["cat", "/proc/self/mountinfo"]).stdout.split():
            r = self.run(["umount", "/sys/fs/cgroup/unified"])
            if r.returncode != 0:
                raise L.RigError("umount /sys/fs/cgroup/unified in %s: %s" % (self.name, r.stderr.strip()))

    def stop(self) -> None:
        """Destroy this node's containers, stop libvirtd, kill leftover controllers of this node."""
        names = []
        if self.running() and self.libvirtd_pid():
            try:
                names = self.domains()
                for name in names:
                    self.destroy(name)
            except Exception:  # noqa: BLE001 - best effort before the kill below
                pass
        self.stop_daemon()
        for pf in (self.dir / "run" / "lxc").glob("*.pid"):
            kill_container(pf.stem)
        for f in (self.mntns, self.utsns):
            if L._is_mountpoint(f):
                L._run(["umount", str(f)], check=False)
        if not L._is_mountpoint(self.mntns) and not L._is_mountpoint(self.utsns):
            shutil.rmtree(self.dir, ignore_errors=True)
        release_run_dir()


def controller_pids(name: str) -> list[int]:
    """PIDs of libvirt_lxc controllers whose command line carries --name <name>."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"libvirt_lxc" and b"--name" in argv:
            i = argv.index(b"--name")
            if i + 1 < len(argv) and argv[i + 1] == name.encode():
                found.append(int(d))
    return [p for p in found if L._alive(p)]


def init_pid(name: str) -> int | None:
    """Host PID of the container's init: the child of its controller that carries LIBVIRT_LXC_NAME."""
    for ctl in controller_pids(name):
        for kid in _children(ctl):
            try:
                env = Path(f"/proc/{kid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"LIBVIRT_LXC_NAME=" + name.encode() in env:
                return kid
    return None


def _children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def kill_container(name: str) -> None:
    """SIGKILL the container's init (the kernel kills its whole PID namespace), then its controller."""
    pid = init_pid(name)
    if pid:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    for ctl in controller_pids(name):
        L.kill_pid(ctl, 5)


def make_root(root: Path, init: str = "busybox") -> Path:
    """A container root at ``root``: static busybox with its applets, /sbin/init, /etc/inittab."""
    if root.exists():
        shutil.rmtree(root)
    for d in ("bin", "sbin", "etc/init.d", "proc", "sys", "dev", "tmp", "run", "root", "var/log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "sleep", "touch", "mount", "echo", "cat", "ls", "ps", "true", "halt", "poweroff",
                   "reboot", "kill", "rm", "mkdir"):
        (root / "bin" / applet).symlink_to("busybox")
    if init in ("busybox", "rebooter"):
        (root / "sbin" / "init").symlink_to("../bin/busybox")
        (root / "etc" / "init.d" / "rcS").write_text("#!/bin/sh\necho booted >> /run/booted\n")
        (root / "etc" / "init.d" / "rcS").chmod(0o755)
        # busybox init treats SIGTERM as "reboot"; its shutdown actions run first: "busybox" powers off there
        # (reboot(RB_POWER_OFF) in a PID namespace ends its init as a power-off), "rebooter" lets it reboot
        poweroff = "::shutdown:/bin/poweroff -f\n" if init == "busybox" else ""
        (root / "etc" / "inittab").write_text(
            "::sysinit:/etc/init.d/rcS\n"
            "::respawn:/bin/sh -c 'while :; do date > /tmp/alive 2>/dev/null; sleep 1; done'\n"
            "::shutdown:/bin/sh -c 'echo shutdown > /run/shutdown'\n" + poweroff)
    elif init == "deaf":
        (root / "sbin" / "init").write_text(
            "#!/bin/sh\n# PID 1 with no signal handler: SIGTERM from libvirt is ignored\n"
            "echo booted > /run/booted\nwhile :; do sleep 1; done\n")
        (root / "sbin" / "init").chmod(0o755)
    else:
        raise L.RigError("unknown init %r" % init)
    return root


def booted(root: Path) -> bool:
    return (root / "run" / "booted").exists()


def container_xml(name: str, root: Path, dom_uuid: str | None = None, memory_mib: int = 64) -> str:
    dom_uuid = dom_uuid or str(uuidlib.uuid4())
    return f"""<domain type='lxc'>
  <name>{name}</name>
  <uuid>{dom_uuid}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type>exe</type>
    <init>/sbin/init</init>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{CONTROLLER}</emulator>
    <filesystem type='mount'>
      <source dir='{root}'/>
      <target dir='/'/>
    </filesystem>
    <console type='pty'/>
  </devices>
</domain>
"""


def wait_for(pred, timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())
