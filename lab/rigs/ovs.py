"""Open vSwitch per rig node: ovsdb-server and ovs-vswitchd inside a libvirt_node.Node's namespaces.

Owns: one OVS instance per node with the userspace datapath (``ovs-vswitchd --disable-system``, bridges with
``datapath_type=netdev``: no kernel module), its database, logs and PID files under
/run/pyra-td/<node>/ovs; the node's /run/openvswitch (bind-mounted, inside the node's mount namespace only, from
<node>/ovs/run) so that the ovs-vsctl that libvirt runs to plug a guest's tap finds this node's database at its
default path, as on a real host; stopping the daemons by the PIDs they recorded; the interface XML the NIIF
seed used (bridge + openvswitch virtualport + VLAN tag).

The only trace on the host is the empty mount point /run/openvswitch, removed by release_rundir() when start()
made it.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from lab.rigs import libvirt_node as L

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
RUNDIR = Path("/run/openvswitch")
_made_rundir: list[Path] = []


def release_rundir() -> None:
    """Remove the host's empty /run/openvswitch if start() made it (after every node's OVS is stopped: removing
    it earlier would detach another node's bind mount)."""
    while _made_rundir:
        try:
            _made_rundir.pop().rmdir()
        except OSError:
            pass


def interface_xml(bridge: str = "vh", vlan: int | None = 150, mac: str | None = None) -> str:
    """The seed's interface: an OVS bridge port, VLAN-tagged, virtio."""
    m = f"<mac address='{mac}'/>" if mac else ""
    v = f"<vlan><tag id='{vlan}'/></vlan>" if vlan is not None else ""
    return (f"<interface type='bridge'>{m}<source bridge='{bridge}'/><virtualport type='openvswitch'/>{v}"
            "<model type='virtio'/></interface>")


class NodeOVS:
    """Open vSwitch on one started node that has its own network namespace."""

    def __init__(self, node: L.Node):
        self.node = node
        self.dir = node.dir / "ovs"
        self.run_dir = self.dir / "run"

    def _on_node(self, argv, timeout=30.0, check=True):
        r = subprocess.run(self.node.ns_prefix() + argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise L.RigError(f"{self.node.name}: {' '.join(argv)}: rc {r.returncode}: {r.stderr.strip()}")
        return r

    def vsctl(self, *args, timeout=30.0, check=True) -> str:
        """ovs-vsctl on the node (its default database socket is this node's)."""
        return self._on_node(["ovs-vsctl", f"--timeout={int(timeout)}", *args], timeout + 5, check).stdout.strip()

    def start(self, bridges=("vh",)) -> "NodeOVS":
        if not self.node.netns or not self.node.has_namespaces():
            raise L.RigError(f"{self.node.name}: OVS needs a started node with its own network namespace")
        self.stop()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for f in self.run_dir.iterdir():
            f.unlink()
        if not RUNDIR.exists():
            RUNDIR.mkdir()
            _made_rundir.append(RUNDIR)
        self._on_node(["/bin/sh", "-c", 'mountpoint -q /run/openvswitch || mount --bind "$1" /run/openvswitch',
                       "sh", str(self.run_dir)])
        self.node.netns_sysfs()  # the bridges appear in the node's /sys/class/net, as on a real host
        db = self.dir / "conf.db"
        db.unlink(missing_ok=True)
        L._run(["ovsdb-tool", "create", str(db), SCHEMA])
        self._on_node(["ovsdb-server", str(db), "--remote=punix:/run/openvswitch/db.sock",
                       "--pidfile=/run/openvswitch/ovsdb-server.pid", "--unixctl=/run/openvswitch/ovsdb-server.ctl",
                       f"--log-file={self.dir / 'ovsdb-server.log'}", "--detach", "--no-chdir"])
        self.vsctl("--no-wait", "init")
        self._on_node(["ovs-vswitchd", "unix:/run/openvswitch/db.sock", "--disable-system",
                       "--pidfile=/run/openvswitch/ovs-vswitchd.pid",
                       f"--log-file={self.dir / 'ovs-vswitchd.log'}", "--detach", "--no-chdir"])
        for br in bridges:
            self.vsctl("--may-exist", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
            self._wait(lambda: self._on_node(["ip", "link", "show", br], check=False).returncode == 0,
                       f"bridge {br} as a network device")
            self._on_node(["ip", "link", "set", br, "up"])
        return self

    def _wait(self, pred, what, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.1)
        raise L.RigError(f"{self.node.name}: no {what} after {timeout}s: {self.log_tail()}")

    def pids(self) -> list[int]:
        out = []
        for name in ("ovs-vswitchd", "ovsdb-server"):
            try:
                pid = int((self.run_dir / f"{name}.pid").read_text())
            except (OSError, ValueError):
                continue
            if L._alive(pid):
                out.append(pid)
        return out

    def stop(self) -> None:
        """Stop this node's daemons (vswitchd first) by their PIDs; unmount /run/openvswitch on the node."""
        for pid in self.pids():
            L.kill_pid(pid, 10)
        if self.node.has_namespaces():
            self._on_node(["/bin/sh", "-c", "! mountpoint -q /run/openvswitch || umount /run/openvswitch"],
                          check=False)

    def ports(self, bridge: str = "vh") -> list[str]:
        return self.vsctl("list-ports", bridge).split()

    def port_tag(self, port: str) -> str:
        return self.vsctl("get", "port", port, "tag")

    def log_tail(self, n: int = 15) -> str:
        parts = []
        for f in ("ovsdb-server.log", "ovs-vswitchd.log"):
            try:
                parts.append("\n".join((self.dir / f).read_text(errors="replace").splitlines()[-n:]))
            except OSError:
                pass
        return "\n".join(parts)
