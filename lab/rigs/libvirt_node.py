"""Private libvirtd "nodes" for the TransientDomain tests, plus guest XML and channel helpers.

Owns: starting a systemd-less libvirtd per node in its own mount and UTS namespace (and, for live
migration, in its own network namespace td-n1/td-n2 joined by the veth pair td-veth1/td-veth2), under
libvirt_reaper.py so destroyed QEMU processes are reaped at once; stopping it by the PIDs it recorded and
killing leftover QEMU of that node only; the guest domain XML; talking to a guest's startup_signal channel.

Layout of a node (nothing outside /run/pyra-td/<node> changes on the host, except empty mount points):
    /run/pyra-td/<node>/{etc,run,lib,log,cache} bind-mounted (inside the node's mount namespace) over
    /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; <node>/hosts over
    /etc/hosts so that node names resolve to the namespace addresses (migration URIs use %n).
Clients on the host reach a node through its unix socket (path based, works from any namespace):
    qemu+unix:///system?socket=/run/pyra-td/<node>/run/libvirt-sock
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

from lab import nsbind

PY = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent
REAPER = HERE / "libvirt_reaper.py"
BASE = Path(os.environ.get("PYRA_TD_RUN", "/run/pyra-td"))
WORK = Path(os.environ.get("PYRA_TD_WORK", "/var/tmp/pyra-td"))
MOUNTS = (("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
          ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt"))
NETNS = {"td-n1": ("10.213.3.1", "td-veth1"), "td-n2": ("10.213.3.2", "td-veth2")}


class RigError(RuntimeError):
    pass


def _run(argv, check=True, timeout=30):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RigError(f"{' '.join(argv)}: rc {r.returncode}: {r.stderr.strip()}")
    return r


def ensure_accounts() -> None:
    """libvirt 9.0 resolves its built-in user libvirt-qemu before reading qemu.conf (lab REPORT §1)."""
    if _run(["getent", "group", "kvm"], check=False).returncode != 0:
        _run(["groupadd", "-r", "kvm"])
    if _run(["getent", "group", "libvirt-qemu"], check=False).returncode != 0:
        _run(["groupadd", "-r", "libvirt-qemu"])
    if _run(["getent", "passwd", "libvirt-qemu"], check=False).returncode != 0:
        _run(["useradd", "-r", "-g", "libvirt-qemu", "-G", "kvm", "-d", "/var/lib/libvirt",
              "-s", "/usr/sbin/nologin", "libvirt-qemu"])


def netns_up() -> None:
    """Namespaces td-n1 (10.213.3.1) and td-n2 (10.213.3.2) joined by td-veth1/td-veth2. Idempotent."""
    have = _run(["ip", "netns", "list"]).stdout.split()
    for ns in NETNS:
        if ns not in have:
            _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
    if _run(["ip", "-n", "td-n1", "link", "show", "td-veth1"], check=False).returncode != 0:
        _run(["ip", "link", "add", "td-veth1", "netns", "td-n1", "type", "veth",
              "peer", "name", "td-veth2", "netns", "td-n2"])
    for ns, (addr, dev) in NETNS.items():
        _run(["ip", "-n", ns, "addr", "replace", f"{addr}/24", "dev", dev])
        _run(["ip", "-n", ns, "link", "set", dev, "up"])


def netns_down() -> None:
    have = _run(["ip", "netns", "list"], check=False).stdout.split()
    for ns in NETNS:
        if ns in have:
            _run(["ip", "netns", "del", ns], check=False)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def kill_pid(pid: int, grace: float = 10.0) -> None:
    """TERM, wait up to grace seconds, then KILL: only this PID."""
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def qemu_pids(dom_uuid: str) -> list[int]:
    """PIDs of QEMU processes whose command line carries -uuid <dom_uuid>."""
    needle = b"\0-uuid\0" + dom_uuid.encode() + b"\0"
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(d))
        except OSError:
            continue
    return [p for p in found if _alive(p)]


def _mountpoints() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def _is_mountpoint(p: Path) -> bool:
    return str(p) in _mountpoints()


def private_run_dir() -> None:
    """Persistent namespace files (unshare --mount=FILE) must live on a private mount: make BASE one."""
    BASE.mkdir(parents=True, exist_ok=True)
    if str(BASE) not in _mountpoints():
        _run(["mount", "--bind", str(BASE), str(BASE)])
    _run(["mount", "--make-private", str(BASE)])


def release_run_dir() -> None:
    """Undo private_run_dir once no node's namespace file is mounted under it (end of a test session)."""
    mounts = _mountpoints()
    if str(BASE) in mounts and not any(m.startswith(str(BASE) + "/") for m in mounts):
        _run(["umount", str(BASE)], check=False)


class Node:
    """One private libvirtd. name starts with 'td-'; netns/addr only for migration nodes."""

    def __init__(self, name: str, netns: str | None = None, addr: str | None = None,
                 hosts: dict[str, str] | None = None):
        if not name.startswith("td-"):
            raise RigError("node names start with td-")
        self.name, self.netns, self.addr = name, netns, addr
        self.hosts = hosts or {}
        self.dir = BASE / name
        self.sock = self.dir / "run" / "libvirt-sock"
        self.uri = f"qemu+unix:///system?socket={self.sock}"
        self.tcp_uri = f"qemu+tcp://{addr}/system" if addr else None
        self.mntns = self.dir / "mntns"
        self.utsns = self.dir / "utsns"
        self.top_pid: int | None = None
        self.proc: subprocess.Popen | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub, mp in MOUNTS:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
            Path(mp).mkdir(parents=True, exist_ok=True)  # host mount point (empty, left in place)
        (self.dir / "etc" / "qemu").mkdir(exist_ok=True)
        (self.dir / "log" / "qemu").mkdir(exist_ok=True)
        hid = self.dir / "host_uuid"
        if not hid.exists():
            hid.write_text(str(uuidlib.uuid4()) + "\n")
        listen = self.addr is not None
        (self.dir / "etc" / "libvirtd.conf").write_text(
            f'host_uuid = "{hid.read_text().strip()}"\n'
            "listen_tls = 0\n"
            f"listen_tcp = {1 if listen else 0}\n"
            f'listen_addr = "{self.addr or "127.0.0.1"}"\n'
            'auth_tcp = "none"\nauth_unix_ro = "none"\nauth_unix_rw = "none"\n'
            'unix_sock_group = "root"\nunix_sock_ro_perms = "0777"\nunix_sock_rw_perms = "0770"\n'
            "max_clients = 200\nmax_workers = 20\n"
            'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
        (self.dir / "etc" / "qemu.conf").write_text(
            'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
            'security_driver = "none"\nstdio_handler = "file"\ncgroup_controllers = [ ]\n'
            + (f'migration_address = "{self.addr}"\nmigration_host = "{self.addr}"\n' if listen else ""))
        (self.dir / "etc" / "libvirt.conf").write_text('uri_default = "qemu:///system"\n')
        hosts = "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in self.hosts.items())
        (self.dir / "hosts").write_text(hosts)

    def has_namespaces(self) -> bool:
        return _is_mountpoint(self.mntns) and _is_mountpoint(self.utsns)

    def ns_prefix(self) -> list[str]:
        """argv prefix that runs a command "on" this node: its mount, UTS (and network) namespace.
        Agents run this way see /run/libvirt/libvirt-sock and the guests' channel sockets as on a real node."""
        p = ["nsenter", f"--mount={self.mntns}", f"--uts={self.utsns}"]
        if self.netns:
            p.append(f"--net=/run/netns/{self.netns}")
        return p + ["--"]

    def netns_sysfs(self) -> None:
        """Show this node's own network devices under /sys/class/net and /sys/devices/virtual/net inside its
        mount namespace, as on a real host (sysfs shows the network namespace of whoever mounted it; the node's
        mount namespace inherited the host's). Only the two net directories are replaced: the rest of /sys
        (cgroups included) stays the host's. Idempotent; for nodes with a network namespace, after start()."""
        if not self.netns or not self.has_namespaces():
            raise RigError(f"{self.name}: netns_sysfs needs a started node with a network namespace")
        sysfs = self.dir / "sysfs"
        script = ('set -e\nmountpoint -q "$1" && exit 0\nmkdir -p "$1"\nmount -t sysfs sysfs "$1"\n'
                  'mount --bind "$1/class/net" /sys/class/net\n'
                  'mount --bind "$1/devices/virtual/net" /sys/devices/virtual/net\n')
        r = subprocess.run(self.ns_prefix() + ["/bin/sh", "-c", script, "sh", str(sysfs)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RigError(f"{self.name}: mounting its sysfs: {r.stderr.strip()}")

    def running(self) -> bool:
        return self.top_pid is not None and _alive(self.top_pid)

    def start(self, timeout: float = 60.0) -> "Node":
        """Start libvirtd (idempotent) and wait until it answers on its socket."""
        if self.running():
            return self
        ensure_accounts()
        self._write_config()
        for s in ("libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock", "libvirtd.pid"):
            (self.dir / "run" / s).unlink(missing_ok=True)
        daemon = [PY, str(REAPER), "/usr/sbin/libvirtd", "--config", "/etc/libvirt/libvirtd.conf",
                  "--pid-file", "/run/libvirt/libvirtd.pid"] + (["--listen"] if self.addr else [])
        if self.has_namespaces():
            # restart inside the node's existing namespaces (the guests' QEMU live there too)
            argv = self.ns_prefix() + daemon
        else:
            private_run_dir()
            for f in (self.mntns, self.utsns):
                f.touch()
            binds = "".join(f'mount --bind "$D/{sub}" {mp}\n' for sub, mp in MOUNTS)
            inner = ("set -e\nhostname \"$TD_NODE\"\n" + binds + 'mount --bind "$D/hosts" /etc/hosts\n'
                     'exec "$@"\n')
            argv = ["unshare", f"--mount={self.mntns}", f"--uts={self.utsns}", "--propagation", "private",
                    "--", "/bin/sh", "-c", inner, "sh"] + daemon
            if self.netns:
                # not `ip netns exec`: it makes its own mount namespace, and unshare would then bind the
                # namespace files there instead of on the host
                argv = ["nsenter", f"--net=/run/netns/{self.netns}", "--"] + argv
        env = dict(os.environ, TD_NODE=self.name, D=str(self.dir))
        import libvirt
        libvirt.registerErrorHandler(lambda *_: None, None)
        # a fresh unshare may be refused by the kernel's namespace-id check: lab/nsbind.py
        attempts = [argv] if self.has_namespaces() else list(nsbind.attempts(argv))
        for n, attempt in enumerate(attempts):
            if n:
                nsbind.release(argv)
            out = open(self.dir / "libvirtd.stdout", "wb")
            # nsenter, taskset, unshare and sh all exec: Popen's pid ends up being the reaper's.
            self.proc = subprocess.Popen(attempt, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
            out.close()
            self.top_pid = self.proc.pid
            (self.dir / "top.pid").write_text(f"{self.top_pid}\n")
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    tail = self.log_tail()
                    if nsbind.refused(tail) and n + 1 < len(attempts):
                        break
                    raise RigError(f"libvirtd {self.name} died: {tail}")
                if self.sock.exists():
                    try:
                        c = libvirt.open(self.uri)
                        c.close()
                        return self
                    except libvirt.libvirtError:
                        pass
                time.sleep(0.1)
            else:
                raise RigError(f"libvirtd {self.name} not ready after {timeout}s: {self.log_tail()}")
        raise RigError(f"libvirtd {self.name} died: {self.log_tail()}")

    def libvirtd_pid(self) -> int | None:
        try:
            pid = int((self.dir / "run" / "libvirtd.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def stop_daemon(self) -> None:
        """Stop libvirtd only (guests keep running, as after a libvirtd crash or restart)."""
        pid = self.libvirtd_pid()
        if pid:
            kill_pid(pid, 15)
        if self.top_pid:
            kill_pid(self.top_pid, 5)
        if self.proc:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.top_pid = None

    def freeze_daemon(self) -> int:
        """SIGSTOP libvirtd (a hung daemon: its socket accepts, nothing answers). Returns the PID."""
        pid = self.libvirtd_pid()
        if not pid:
            raise RigError("libvirtd not running")
        os.kill(pid, signal.SIGSTOP)
        return pid

    def thaw_daemon(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Destroy this node's guests, stop libvirtd, kill leftover QEMU started by this node."""
        if self.running() and self.libvirtd_pid():
            try:
                for name in self.domains():
                    self.destroy(name)
            except Exception:  # noqa: BLE001 - best effort before the kill below
                pass
        self.stop_daemon()
        for pf in (self.dir / "run" / "qemu").glob("*.pid"):
            try:
                pid = int(pf.read_text())
            except (OSError, ValueError):
                continue
            try:
                comm = Path(f"/proc/{pid}/comm").read_text()
            except OSError:
                continue
            if "qemu" in comm:
                kill_pid(pid, 5)
        for f in (self.mntns, self.utsns):
            if _is_mountpoint(f):
                _run(["umount", str(f)], check=False)

    def log_tail(self, n: int = 20) -> str:
        parts = []
        for f in (self.dir / "libvirtd.stdout", self.dir / "log" / "libvirtd.log"):
            try:
                parts.append("\n".join(f.read_text(errors="replace").splitlines()[-n:]))
            except OSError:
                pass
        return "\n".join(parts)

    # --- domains ---------------------------------------------------------------------------------
    def conn(self):
        import libvirt
        libvirt.registerErrorHandler(lambda *_: None, None)
        return libvirt.open(self.uri)

    def domains(self) -> list[str]:
        c = self.conn()
        try:
            return [d.name() for d in c.listAllDomains()]
        finally:
            c.close()

    def run(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run a command on this node (inside its namespaces)."""
        return subprocess.run(self.ns_prefix() + argv, capture_output=True, text=True, timeout=timeout)

    def state(self, name: str) -> tuple[int, int] | None:
        import libvirt
        c = self.conn()
        try:
            return tuple(c.lookupByName(name).state())
        except libvirt.libvirtError:
            return None
        finally:
            c.close()

    def destroy(self, name: str) -> None:
        import libvirt
        c = self.conn()
        try:
            d = c.lookupByName(name)
            if d.isActive():
                d.destroy()
            if d.isPersistent():
                d.undefine()
        except libvirt.libvirtError:
            pass
        finally:
            c.close()

    def xml_desc(self, name: str) -> str:
        c = self.conn()
        try:
            return c.lookupByName(name).XMLDesc(0)
        finally:
            c.close()

    def channel_path(self, name: str, channel: str = "startup_signal") -> str | None:
        """The channel socket as seen from the host (the node sees it under /var/lib/libvirt)."""
        path = channel_path_from_xml(self.xml_desc(name), channel)
        return self.host_path(path) if path else None

    def host_path(self, path: str) -> str:
        for sub, mp in MOUNTS:
            if path.startswith(mp + "/"):
                return str(self.dir / sub / path[len(mp) + 1:])
        return path


def channel_path_from_xml(xml: str, channel: str = "startup_signal") -> str | None:
    import xml.etree.ElementTree as ET
    for ch in ET.fromstring(xml).iter("channel"):
        t = ch.find("target")
        s = ch.find("source")
        if t is not None and t.get("name") == channel and s is not None:
            return s.get("path")
    return None


def socket_count(pid: int) -> int:
    """Open sockets of process pid (a libvirtd: its listening sockets plus one per client connection)."""
    count = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                count += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
            except OSError:
                pass
    except OSError:
        pass
    return count


def guest_xml(name: str, images: Path, dom_uuid: str | None = None, memory_mib: int = 128,
              cmdline: str = "", channel: bool = True, console: str | None = None, disk: str | None = None,
              devices: str = "") -> str:
    """A transient TCG guest (type='qemu': software emulation, KVM cannot boot Linux on these VMs).
    devices: more device XML, as is (an interface, a network disk: see ovs.py, nbd.py)."""
    dom_uuid = dom_uuid or str(uuidlib.uuid4())
    console = console or str(WORK / "console" / f"{name}.log")
    Path(console).parent.mkdir(parents=True, exist_ok=True)
    ch = ("<channel type='unix'><target type='virtio' name='startup_signal'/></channel>" if channel else "")
    dk = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
          "<target dev='vda' bus='virtio'/></disk>" if disk else "")
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{dom_uuid}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{images}/vmlinux</kernel>
    <initrd>{images}/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 {cmdline}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='{console}' append='on'/><target port='0'/></serial>
    <console type='file'><source path='{console}' append='on'/><target type='serial' port='0'/></console>
    {ch}
    {dk}
    {devices}
    <controller type='usb' model='none'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def channel_exchange(path: str, send: str | None, expect_prefix: str, timeout: float = 10.0) -> str:
    """Connect to a guest channel socket, optionally send a line, return the first line starting with
    expect_prefix. Never half-closes (QEMU would drop the client and the reply would be lost)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    end = time.monotonic() + timeout
    try:
        s.connect(path)
        if send is not None:
            s.sendall(send.encode() + b"\n")
        buf = b""
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                data = s.recv(4096)
            except socket.timeout:
                break
            if not data:
                time.sleep(0.05)
                continue
            buf += data
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith(expect_prefix):
                    return line
        raise RigError(f"no {expect_prefix!r} on {path} within {timeout}s (got {buf!r})")
    finally:
        s.close()


def ping(path: str, token: str = "x", timeout: float = 10.0) -> bool:
    try:
        return channel_exchange(path, f"ping {token}", f"pong {token}", timeout) == f"pong {token}"
    except (OSError, RigError):
        return False


def wait_gone(node: Node, name: str, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if node.state(name) is None:
            return True
        time.sleep(0.1)
    return False
