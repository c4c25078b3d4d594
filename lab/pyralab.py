#!/usr/bin/python3
"""pyralab: a real Pacemaker 2.1 + Corosync 3 cluster of N (2-3) nodes on one machine, without systemd.

This module owns the cluster lab used by tests/cluster/ and `make demo`: it builds, runs and tears down the
namespace nodes, and offers the verbs a test needs (kill, freeze, partition, exec ...). It knows nothing
about any agent.

Layout (everything prefixed pyra-pcmk; nothing outside these names is created, signalled or removed):
  netns pyra-pcmk-br   bridge pyra-pcmk-br0; port pyra-pcmk-nK-p per node (veth to the node's eth0)
  netns pyra-pcmk-nK   lo + eth0 10.98.7.1K/24, no route anywhere else
  mount + uts ns       persistent in /run/pyra-pcmk/ns/pyra-pcmk-nK.{mnt,uts}; hostname nK. Every mount
                       copied from the host is dropped (so a node pins nobody's mounts) except / /proc /dev;
                       then per-node bind mounts of /var/tmp/pyra-pcmk/nodes/nK/<dir> on
                       /etc/corosync /var/lib/pacemaker /var/lib/corosync /var/log/pacemaker /var/log/corosync
                       /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /run; a private tmpfs
                       on /dev/shm; a fresh /sys (+ the host's cgroup hierarchies).
  /etc/lvm             per node (system_id_source = "uname": each node's system ID is its hostname); LV
                       activation through the device-mapper stand-in (lab/dmstandin, on pacemaker's PATH),
                       which keeps the node's /dev/mapper and /sys/dev/block in /var/tmp/pyra-pcmk/nodes/nK/dm
                       (mounted there in the node's mount namespace). A power cut (kill / fence) also drops
                       what the node had mounted from those devices and the devices; a boot starts with none.
  shared storage       /var/tmp/pyra-pcmk/shared is, on every node, a bind mount of
                       /var/tmp/pyra-pcmk/storage ("the SAN"); `unplug NODE` removes it on that node only.
  fencing              /usr/sbin/fence_pyralab (installed by `up`, removed by `down`) SIGKILLs every process
                       of the victim node; registered as stonith resource `fence-lab`, stonith-enabled=true.
  libvirtd             on demand (`libvirt`): one per node under a subreaper, qemu:///system on the node's
                       /run/libvirt, TCP on the node's address for migration; node names resolve via /etc/hosts.
  timing               corosync token 1000 ms (PYRA_LAB_TOKEN), dc-deadtime 3 s, resource-stickiness 100.

Nodes see the host's /usr, so pyra installed on the host with `make install` is installed "on every node".
Daemons get a clean environment (PATH=/usr/sbin:/usr/bin:/sbin:/bin), like systemd would give them.

CLI: pyralab.py up [N] | remote [rK] | down | status | exec NODE CMD... | kill NODE | start NODE | stop NODE |
     freeze NODE | thaw NODE | partition NODE | heal [NODE] | unplug NODE | plug NODE | mon | libvirt
NODE may be n2, 2 or pyra-pcmk-n2. Run as root with /usr/bin/python3.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

if __name__ == "__main__":  # run as a script (the CLI, _inside, _reaper): the package lab is beside this file
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab import dmstandin, nsbind  # noqa: E402

PREFIX = "pyra-pcmk"
LAB = "/var/tmp/pyra-pcmk"
RUN = "/run/pyra-pcmk"
NSD = RUN + "/ns"
BRNS = PREFIX + "-br"
BR = PREFIX + "-br0"
SUBNET = "10.98.7"
STORAGE = LAB + "/storage"
SHARED = LAB + "/shared"
FENCE_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fence_pyralab")
FENCE_DST = "/usr/sbin/fence_pyralab"
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# The host kernel (hence every node's) has no device-mapper: LV activation's kernel step is played by the
# stand-in lab/dmstandin (a loop device over the LV's extents, published in the node's own /dev/mapper and
# /sys/dev/block). Pacemaker on every node gets its `lvm` first on PATH, as an admin would put site settings
# in /etc/default/pacemaker; the agents are told nothing.
DM_STANDIN_BIN = dmstandin.DIR
PCMK_ENV = {"PCMK_logfile": "/var/log/pacemaker/pacemaker.log", "PCMK_logfacility": "none",
            "PATH": f"{DM_STANDIN_BIN}:{CLEAN_PATH}"}
# a node's own /etc/lvm until the storage helper (lab/sanstorage.py) accepts its LUNs: scan nothing
NODE_LVM_CONF = ('# written by pyra lab/pyralab.py: no LUN of the rig yet\n'
                 'devices {\n    global_filter = [ "r|.*|" ]\n    use_devicesfile = 0\n}\n'
                 'global {\n    system_id_source = "uname"\n}\n')
CLEAN_ENV = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": "/root"}
# per-node directories bound over the host path (dir name under nodes/nK, host path, owner, mode)
NODE_DIRS = (
    ("etc-corosync", "/etc/corosync", None, 0o755),
    ("var-lib-pacemaker", "/var/lib/pacemaker", "hacluster", 0o750),
    ("var-lib-corosync", "/var/lib/corosync", None, 0o755),
    ("var-log-pacemaker", "/var/log/pacemaker", "hacluster", 0o770),
    ("var-log-corosync", "/var/log/corosync", None, 0o755),
    ("etc-libvirt", "/etc/libvirt", None, 0o755),
    ("var-lib-libvirt", "/var/lib/libvirt", None, 0o755),
    ("var-log-libvirt", "/var/log/libvirt", None, 0o755),
    ("var-cache-libvirt", "/var/cache/libvirt", None, 0o755),
    ("etc-lvm", "/etc/lvm", None, 0o755),
    ("etc-pacemaker", "/etc/pacemaker", "hacluster", 0o750),  # the cluster's authkey for pacemaker_remote
    ("run", "/run", None, 0o755),
)
KEEP_MOUNTS = ("/", "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/hugepages")


class LabError(RuntimeError):
    """The rig could not do what was asked; the message says what and where to look."""


def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} [pyralab] {msg}\n")
    sys.stderr.flush()


def run(argv, check=True, timeout=60, **kw):
    """Run a host command (argv list), capture output; raise LabError with its stderr when check fails."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from e
    if check and res.returncode != 0:
        raise LabError(f"{' '.join(argv)} -> rc {res.returncode}: {res.stderr.strip() or res.stdout.strip()}")
    return res


def wait_for(pred, timeout, step=0.2, what="condition"):
    end = time.monotonic() + timeout
    while True:
        try:
            val = pred()
        except LabError:
            val = None
        if val:
            return val
        if time.monotonic() > end:
            raise LabError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


# ----------------------------------------------------------------------------------------- processes
def proc_start(pid):
    """Start time (clock ticks) of a live, non-zombie process, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        try:  # our own child (the test process started it): reap it
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return None
    return int(fields[19])


def proc_state(pid):
    """(state letter, parent PID, start ticks) of a process still in /proc, zombies included, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        fields = raw[raw.rindex(b")") + 2:].split()
        return fields[0].decode(), int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return "?"


def still_there(pid, start):
    """True while the process (pid, start) is in /proc, even as a zombie; our own zombie children are reaped."""
    st = proc_state(pid)
    if st is None or st[2] != start:
        return False
    if st[0] == "Z" and st[1] == os.getpid():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        st = proc_state(pid)
        return st is not None and st[2] == start
    return True


def write_pidfile(path, pid):
    with open(path, "w", encoding="ascii") as f:
        f.write(f"{pid} {proc_start(pid)}\n")


def pidfile_alive(path):
    """PID recorded in path if that very process (same start time) still runs, else None."""
    try:
        with open(path, encoding="ascii") as f:
            pid, start = f.read().split()
    except (OSError, ValueError):
        return None
    return int(pid) if str(proc_start(int(pid))) == start else None


def signal_pid(pid, sig):
    """Send sig to pid; a process that is already gone (reaped since we looked) is no error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid, timeout):
    end = time.monotonic() + timeout
    while proc_start(pid) is not None:
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def ns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_of(net_ino, mnt_ino):
    """Processes in the given net or mount namespace, plus their descendants (same rule as fence_pyralab)."""
    parent, members = {}, set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            if fields[0] == b"Z":
                continue
            parent[pid] = int(fields[1])
            if ns_inode(f"/proc/{pid}/ns/net") == net_ino or ns_inode(f"/proc/{pid}/ns/mnt") == mnt_ino:
                members.add(pid)
        except (OSError, ValueError, IndexError):
            continue
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    members.discard(os.getpid())
    return members


# ----------------------------------------------------------------------------------------- the lab
class Lab:
    """The rig. State lives in LAB (per-node dirs, pidfiles, logs) and RUN (namespace files)."""

    def __init__(self, token_ms=None, dc_deadtime="3s"):
        self.token_ms = int(token_ms or os.environ.get("PYRA_LAB_TOKEN", "1000"))
        self.dc_deadtime = dc_deadtime

    # ---- names
    @staticmethod
    def _listed(name):
        try:
            with open(f"{LAB}/{name}.list", encoding="ascii") as f:
                return f.read().split()
        except OSError:
            return []

    @property
    def nodes(self):
        return self._listed("nodes")

    @property
    def remotes(self):
        """The pacemaker_remote nodes (r1, r2 ...), in the order they were added."""
        return self._listed("remotes")

    @property
    def all_nodes(self):
        return self.nodes + self.remotes

    @staticmethod
    def node_name(arg):
        arg = str(arg)
        if arg.startswith(PREFIX + "-"):
            arg = arg[len(PREFIX) + 1:]
        if arg.isdigit():
            arg = "n" + arg
        if not (arg[:1] in ("n", "r") and arg[1:].isdigit() and 0 < int(arg[1:]) < 10):
            raise LabError(f"bad node name {arg!r} (use n1, 2, r1 or {PREFIX}-n3)")
        return arg

    @staticmethod
    def is_remote(node):
        return node.startswith("r")

    @staticmethod
    def addr(node):
        """A full node nK is 10.98.7.1K, a remote node rK 10.98.7.2K."""
        return f"{SUBNET}.{1 if node.startswith('n') else 2}{node[1:]}"

    @staticmethod
    def netns(node):
        return f"{PREFIX}-{node}"

    @staticmethod
    def ndir(node):
        return f"{LAB}/nodes/{node}"

    @staticmethod
    def dm_state(node):
        """The node's device-mapper state (its /dev/mapper and /sys/dev/block, see lab.dmstandin)."""
        return f"{LAB}/nodes/{node}/dm"

    def ns_argv(self, node):
        ns = self.netns(node)
        return ["nsenter", f"--net=/run/netns/{ns}", f"--mount={NSD}/{ns}.mnt", f"--uts={NSD}/{ns}.uts", "--"]

    # ---- running things on a node
    def exec(self, node, argv, check=False, timeout=120, env=None, input=None):
        """Run argv inside node (net + mount + uts namespaces, clean environment); CompletedProcess."""
        node = self.node_name(node)
        full_env = dict(CLEAN_ENV)
        full_env.update(env or {})
        try:
            res = subprocess.run(self.ns_argv(node) + list(argv), capture_output=True, text=True,
                                 timeout=timeout, env=full_env, cwd="/", input=input)
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{node}: timed out after {timeout}s: {' '.join(argv)}") from e
        if check and res.returncode != 0:
            raise LabError(f"{node}: {' '.join(argv)} -> rc {res.returncode}: "
                           f"{(res.stderr.strip() or res.stdout.strip())[-2000:]}")
        return res

    def spawn(self, node, argv, logfile, env=None):
        """Start a daemon inside node, detached in its own session; returns its PID (nsenter execs it)."""
        full_env = dict(CLEAN_ENV)
        full_env.update(env or {})
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(self.ns_argv(node) + list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=full_env, cwd="/", start_new_session=True)
        return proc.pid

    def node_record(self, node):
        return (ns_inode(f"/run/netns/{self.netns(node)}"), ns_inode(f"{NSD}/{self.netns(node)}.mnt"))

    def node_pids(self, node):
        net, mnt = self.node_record(node)
        if net is None and mnt is None:
            return set()
        return pids_of(net, mnt)

    def alive(self, node):
        daemon = "pacemaker-remoted" if self.is_remote(node) else "pacemakerd"
        return pidfile_alive(f"{self.ndir(node)}/{daemon}.pid") is not None

    # ---- building
    def _write_corosync_conf(self, path, count):
        nodes = "".join(
            f"    node {{\n        name: n{i}\n        nodeid: {i}\n        ring0_addr: {SUBNET}.1{i}\n    }}\n"
            for i in range(1, count + 1))
        two = "    two_node: 1\n" if count == 2 else ""
        with open(path, "w", encoding="ascii") as f:
            f.write(
                "# written by pyra lab/pyralab.py\n"
                "totem {\n    version: 2\n    cluster_name: pyralab\n    transport: knet\n"
                f"    crypto_cipher: none\n    crypto_hash: none\n    token: {self.token_ms}\n}}\n"
                f"nodelist {{\n{nodes}}}\n"
                f"quorum {{\n    provider: corosync_votequorum\n{two}}}\n"
                "logging {\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n"
                "    logfile: /var/log/corosync/corosync.log\n    timestamp: on\n}\n")

    def _seed_cib(self, path, count):
        with open(path, "w", encoding="utf-8") as f:
            f.write(run(["cibadmin", "--empty"]).stdout)
        env = dict(CLEAN_ENV, CIB_file=path)
        for name, value in (("stonith-enabled", "false"), ("dc-deadtime", self.dc_deadtime),
                            ("cluster-recheck-interval", "1min")):
            run(["crm_attribute", "-t", "crm_config", "-n", name, "-v", value], env=env)
        hosts = " ".join(f"n{i}" for i in range(1, count + 1))
        fence = (f'<primitive id="fence-lab" class="stonith" type="fence_pyralab">'
                 f'<instance_attributes id="fence-lab-ia">'
                 f'<nvpair id="fence-lab-hosts" name="pcmk_host_list" value="{hosts}"/>'
                 f'<nvpair id="fence-lab-check" name="pcmk_host_check" value="static-list"/>'
                 f'<nvpair id="fence-lab-labdir" name="labdir" value="{LAB}"/>'
                 f'</instance_attributes>'
                 f'<operations><op id="fence-lab-monitor" name="monitor" interval="60s"/></operations>'
                 f'</primitive>')
        run(["cibadmin", "-C", "-o", "resources", "-X", fence], env=env)
        defaults = ('<rsc_defaults><meta_attributes id="rsc-options">'
                    '<nvpair id="rsc-options-resource-stickiness" name="resource-stickiness" value="100"/>'
                    '</meta_attributes></rsc_defaults>')
        run(["cibadmin", "-C", "-o", "configuration", "-X", defaults], env=env)

    def _reset_run(self, node):
        """What a reboot does to the node's /run (a tmpfs on real machines)."""
        d = f"{self.ndir(node)}/run"
        os.makedirs(d, exist_ok=True)
        for entry in os.listdir(d):  # keep the directory itself: the node's /run is a bind mount of it
            p = f"{d}/{entry}"
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        for sub, owner, mode in (("crm", "hacluster", 0o750), ("resource-agents", None, 0o1755),
                                 ("lock", None, 0o1777), ("libvirt", None, 0o755), ("lxc", None, 0o755)):
            p = f"{d}/{sub}"
            os.makedirs(p)
            os.chmod(p, mode)
            if owner:
                shutil.chown(p, owner, "haclient")
        os.symlink("/dev/shm", f"{d}/shm")

    def _reset_dm(self, node):
        """What a reboot does to the node's device-mapper: no LV active (the power cut released the devices)."""
        run(["nsenter", f"--mount={NSD}/{self.netns(node)}.mnt", "--", sys.executable, os.path.abspath(__file__),
             "_dmreset", node])

    def _make_node_fs(self, node, count, seed):
        d = self.ndir(node)
        if os.path.isdir(d):
            shutil.rmtree(d)  # a stale cib.xml.sig / cib-N.raw would win over the seed
        os.makedirs(d)
        for sub, _, owner, mode in NODE_DIRS:
            p = f"{d}/{sub}"
            os.makedirs(p, exist_ok=True)
            os.chmod(p, mode)
            if owner:
                shutil.chown(p, owner, "haclient")
        for sub in ("cib", "pengine", "blackbox", "cores"):
            p = f"{d}/var-lib-pacemaker/{sub}"
            os.makedirs(p)
            os.chmod(p, 0o750)
            shutil.chown(p, "hacluster", "haclient")
        with open(f"{d}/etc-lvm/lvm.conf", "w", encoding="ascii") as f:
            f.write(NODE_LVM_CONF)
        shutil.copyfile(f"{LAB}/authkey", f"{d}/etc-pacemaker/authkey")
        os.chmod(f"{d}/etc-pacemaker/authkey", 0o640)
        shutil.chown(f"{d}/etc-pacemaker/authkey", "hacluster", "haclient")
        if os.path.isdir("/etc/libvirt"):  # each node's libvirtd gets its own copy of the host's config
            shutil.rmtree(f"{d}/etc-libvirt")
            shutil.copytree("/etc/libvirt", f"{d}/etc-libvirt", symlinks=True)
        self._reset_run(node)
        self._write_corosync_conf(f"{d}/etc-corosync/corosync.conf", count)
        cib = f"{d}/var-lib-pacemaker/cib/cib.xml"
        shutil.copyfile(seed, cib)
        os.chmod(cib, 0o600)
        shutil.chown(cib, "hacluster", "haclient")
        ns = self.netns(node)
        for kind in ("mnt", "uts"):
            open(f"{NSD}/{ns}.{kind}", "a").close()
        argv = ["nsenter", f"--net=/run/netns/{ns}", "unshare", f"--mount={NSD}/{ns}.mnt", f"--uts={NSD}/{ns}.uts",
                "--propagation", "private", sys.executable, os.path.abspath(__file__), "_inside", node]
        res = nsbind.run(argv, lambda a: run(a, check=False))
        if res.returncode != 0:
            raise LabError(f"{' '.join(argv)} -> rc {res.returncode}: {res.stderr.strip() or res.stdout.strip()}")
        net, mnt = self.node_record(node)
        with open(f"{LAB}/fence/{node}.ns", "w", encoding="ascii") as f:
            f.write(f"net={net} mnt={mnt}\n")

    @staticmethod
    def _inside(node):
        """Runs inside the fresh mount/uts namespace of node: hostname, drop copied mounts, bind our own."""
        import socket
        socket.sethostname(node)
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
        cgroups = [(m[4], m[m.index("-") + 1], m[m.index("-") + 3]) for m in mounts
                   if m[4].startswith("/sys/fs/cgroup")]
        for target in sorted({m[4] for m in mounts}, reverse=True):
            if target not in KEEP_MOUNTS and not target.startswith("/proc/"):
                subprocess.run(["umount", "-l", target], capture_output=True)
        d = f"{LAB}/nodes/{node}"
        run(["mount", "-t", "sysfs", f"{PREFIX}-sys-{node}", "/sys"])
        dmstandin.setup(Lab.dm_state(node))  # /dev/mapper and /sys/dev/block of the node's own
        for target, fstype, opts in sorted(cgroups):  # LXC and libvirt want the cgroup hierarchies
            opts = ",".join(o for o in opts.split(",") if o not in ("rw", "ro"))
            argv = ["mount", "-t", fstype] + (["-o", opts] if opts else []) + [fstype, target]
            if fstype == "tmpfs":
                argv = ["mount", "-t", "tmpfs", "-o", "mode=755", f"{PREFIX}-cg", target]
            subprocess.run(argv, capture_output=True)
        for sub, target, _, _ in NODE_DIRS:
            os.makedirs(target, exist_ok=True)
            run(["mount", "--bind", f"{d}/{sub}", target])
        run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=256m", f"{PREFIX}-shm-{node}", "/dev/shm"])
        run(["mount", "--bind", STORAGE, SHARED])
        run(["mount", "--bind", f"{LAB}/hosts", "/etc/hosts"])  # node names resolve (libvirt's %n URIs)
        # As systemd leaves a host: every mount shared, so the mount namespaces made here later (libvirt's per-QEMU
        # one is a slave copy) see an unmount of the node's. With private mounts, a guest started while an
        # LVMFilesystem was mounted kept a copy that held the LV open after the resource's stop (the soak, seed 5).
        # The peer groups are new ones: the node namespace was made with private propagation, the host sees none.
        run(["mount", "--make-rshared", "/"])

    def _make_network(self, count):
        run(["ip", "netns", "add", BRNS])
        run(["ip", "-n", BRNS, "link", "set", "lo", "up"])
        run(["ip", "-n", BRNS, "link", "add", BR, "type", "bridge", "forward_delay", "0", "stp_state", "0"])
        run(["ip", "-n", BRNS, "link", "set", BR, "up"])
        for i in range(1, count + 1):
            self._plug_network(f"n{i}")

    def _plug_network(self, node):
        ns = self.netns(node)
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", BRNS, "link", "add", f"{ns}-p", "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", BRNS, "link", "set", f"{ns}-p", "master", BR, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{self.addr(node)}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _write_hosts(self):
        """Every node's name -> address; rewritten in place (it is bind-mounted on every node's /etc/hosts)."""
        with open(f"{LAB}/hosts", "w", encoding="ascii") as f:
            f.write("127.0.0.1 localhost\n" + "".join(f"{self.addr(n)} {n}\n" for n in self.all_nodes))

    # ---- daemons
    def _start_corosync(self, node):
        d = self.ndir(node)
        pid = self.spawn(node, ["corosync", "-f"], f"{d}/corosync.stdout")
        write_pidfile(f"{d}/corosync.pid", pid)

    def _start_pacemaker(self, node):
        d = self.ndir(node)
        pid = self.spawn(node, ["pacemakerd"], f"{d}/pacemakerd.stdout", env=PCMK_ENV)
        write_pidfile(f"{d}/pacemakerd.pid", pid)

    # ---- libvirtd per node (for TransientDomain): started on demand, restarted when a node reboots
    def libvirt_enabled(self):
        return os.path.exists(f"{LAB}/libvirt.enabled")

    def enable_libvirt(self):
        """Start a private libvirtd (qemu:///system, TCP on the node's address for migration) on every node."""
        open(f"{LAB}/libvirt.enabled", "w").close()
        for n in self.nodes:
            if self.alive(n):
                self.start_libvirtd(n)

    def _libvirtd_ready(self, node):
        return self.exec(node, ["virsh", "-c", "qemu:///system", "uri"], timeout=10).returncode == 0

    def start_libvirtd(self, node):
        d = self.ndir(node)
        if pidfile_alive(f"{d}/libvirtd.pid") and self._libvirtd_ready(node):
            return
        addr = self.addr(node)
        etc = f"{d}/etc-libvirt"
        uuid_file = f"{d}/host_uuid"
        if not os.path.exists(uuid_file):  # migration refuses a target with the source's host UUID
            import uuid
            with open(uuid_file, "w", encoding="ascii") as f:
                f.write(str(uuid.uuid4()))
        with open(uuid_file, encoding="ascii") as f:
            host_uuid = f.read().strip()
        with open(f"{etc}/libvirtd.conf", "w", encoding="ascii") as f:
            f.write(f'host_uuid = "{host_uuid}"\nlisten_tls = 0\nlisten_tcp = 1\nlisten_addr = "{addr}"\n'
                    'auth_tcp = "none"\nauth_unix_ro = "none"\nauth_unix_rw = "none"\n'
                    'unix_sock_group = "root"\nunix_sock_ro_perms = "0777"\nunix_sock_rw_perms = "0770"\n'
                    'max_clients = 200\nmax_workers = 20\nlog_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
        with open(f"{etc}/qemu.conf", "w", encoding="ascii") as f:
            f.write('user = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
                    'security_driver = "none"\nstdio_handler = "file"\ncgroup_controllers = [ ]\n'
                    f'migration_address = "{addr}"\nmigration_host = "{addr}"\n')
        with open(f"{etc}/libvirt.conf", "w", encoding="ascii") as f:
            f.write('uri_default = "qemu:///system"\n')
        pid = self.spawn(node, [sys.executable, os.path.abspath(__file__), "_reaper", "/usr/sbin/libvirtd",
                                "--listen", "--config", "/etc/libvirt/libvirtd.conf",
                                "--pid-file", "/run/libvirt/libvirtd.pid"], f"{d}/libvirtd.stdout")
        write_pidfile(f"{d}/libvirtd.pid", pid)
        wait_for(lambda: self._libvirtd_ready(node), 60, what=f"libvirtd on {node}")

    def node_path(self, node, path):
        """The host path of a file a node sees at path (for its private directories)."""
        for sub, target, _, _ in sorted(NODE_DIRS, key=lambda x: -len(x[1])):
            if path == target or path.startswith(target + "/"):
                return f"{self.ndir(node)}/{sub}{path[len(target):]}"
        return path

    def online(self, viewer, kind="member"):
        """Names of the nodes of ``kind`` (member: full nodes; remote) that viewer's crm_mon shows as online
        (empty when it cannot tell)."""
        res = self.exec(viewer, ["crm_mon", "-1", "-X"], timeout=20)
        if res.returncode != 0:
            return []
        import xml.etree.ElementTree as ET
        try:
            root = ET.fromstring(res.stdout)
        except ET.ParseError:
            return []
        return sorted(n.get("name") for n in root.iter("node")
                      if n.get("online") == "true" and n.get("type", "member") == kind)

    def _corosync_ready(self, node):
        return self.exec(node, ["corosync-cfgtool", "-s"], timeout=10).returncode == 0

    def up(self, count=3):
        """Build and start the cluster; a no-op when the same cluster already runs."""
        if count not in (2, 3, 4, 5):
            raise LabError("node count must be 2..5")
        t0 = time.monotonic()
        if self.nodes:
            if len(self.nodes) == count and all(self.alive(n) for n in self.nodes):
                log(f"already up ({' '.join(self.nodes)})")
                return
            log("leftovers of an earlier run found, tearing them down first")
            self.down()
        names = [f"n{i}" for i in range(1, count + 1)]
        existing = run(["ip", "netns", "list"]).stdout.split()
        for ns in [BRNS] + [self.netns(n) for n in names]:
            if ns in existing:
                raise LabError(f"netns {ns} exists but the rig has no record of it; run `pyralab.py down`")
        for d in (LAB, f"{LAB}/nodes", f"{LAB}/fence", STORAGE, SHARED, NSD):
            os.makedirs(d, exist_ok=True)
        dmstandin.ensure_mountpoint()
        with open(f"{LAB}/nodes.list", "w", encoding="ascii") as f:
            f.write("\n".join(names) + "\n")
        if run(["mountpoint", "-q", NSD], check=False).returncode != 0:
            run(["mount", "--bind", NSD, NSD])
        run(["mount", "--make-private", NSD])
        shutil.copyfile(FENCE_SRC, FENCE_DST + ".tmp")
        os.chmod(FENCE_DST + ".tmp", 0o755)
        os.replace(FENCE_DST + ".tmp", FENCE_DST)
        self._write_hosts()
        with open(f"{LAB}/authkey", "wb") as f:  # pacemaker_remote's shared key (each node's /etc/pacemaker)
            f.write(os.urandom(4096))
        seed = f"{LAB}/seed-cib.xml"
        self._seed_cib(seed, count)
        self._make_network(count)
        for n in names:
            self._make_node_fs(n, count, seed)
        log(f"namespaces ready after {time.monotonic() - t0:.1f}s")
        for n in names:
            self._start_corosync(n)
        for n in names:
            wait_for(lambda n=n: self._corosync_ready(n), 30, what=f"corosync on {n}")
        wait_for(lambda: self.exec("n1", ["corosync-quorumtool", "-s"], timeout=10).returncode == 0, 30,
                 what="corosync quorum")
        log(f"corosync quorate after {time.monotonic() - t0:.1f}s")
        for n in names:
            self._start_pacemaker(n)
        wait_for(lambda: self.online("n1") == names, 180, 0.3, what=f"all of {names} online")
        self.exec("n1", ["crm_attribute", "-t", "crm_config", "-n", "stonith-enabled", "-v", "true"], check=True)
        wait_for(lambda: self.where("fence-lab"), 60, 0.3, what="fence device started")
        elapsed = time.monotonic() - t0
        with open(f"{LAB}/last-up-seconds", "w", encoding="ascii") as f:
            f.write(f"{elapsed:.1f}\n")
        log(f"cluster up after {elapsed:.1f}s: {' '.join(names)}, fencing by fence_pyralab")

    # ---- pacemaker_remote nodes
    def _start_remoted(self, node):
        d = self.ndir(node)
        pid = self.spawn(node, [remoted_binary()], f"{d}/pacemaker-remoted.stdout", env=PCMK_ENV)
        write_pidfile(f"{d}/pacemaker-remoted.pid", pid)

    def _remoted_ready(self, node):
        return self.exec(node, ["ss", "-Hltn", "sport = :3121"], timeout=10).stdout.strip() != ""

    def online_remotes(self, viewer):
        """Remote node names viewer's crm_mon shows as online."""
        return self.online(viewer, kind="remote")

    def _set_fence_hosts(self, viewer):
        """The fence device covers every node, full and remote."""
        self.exec(viewer, ["crm_resource", "-r", "fence-lab", "--set-parameter", "pcmk_host_list",
                           "--parameter-value", " ".join(self.all_nodes)], check=True)

    def add_remote(self, node=None, wait=True):
        """A pacemaker_remote node rK: its own namespaces and address, pacemaker-remoted with the cluster's
        authkey (and libvirtd when the lab has it), the ocf:pacemaker:remote resource rK that connects the
        cluster to it, and its name in the fence device's host list. Returns the node name."""
        if not self.nodes:
            raise LabError("the lab is down: `up` first")
        node = self.node_name(node) if node else f"r{len(self.remotes) + 1}"
        if not self.is_remote(node) or node in self.remotes:
            raise LabError(f"{node}: not a new remote node name (r1 .. r9)")
        t0 = time.monotonic()
        with open(f"{LAB}/remotes.list", "a", encoding="ascii") as f:
            f.write(node + "\n")
        self._write_hosts()
        self._plug_network(node)
        self._make_node_fs(node, len(self.nodes), f"{LAB}/seed-cib.xml")
        shutil.copyfile(self.node_path(self.nodes[0], "/etc/lvm/lvm.conf"),  # the SAN's LUN filter, if any
                        self.node_path(node, "/etc/lvm/lvm.conf"))
        if self.libvirt_enabled():
            self.start_libvirtd(node)
        self._start_remoted(node)
        wait_for(lambda: self._remoted_ready(node), 30, what=f"pacemaker-remoted on {node}")
        viewer = self.viewer()
        self._set_fence_hosts(viewer)
        xml = (f'<primitive id="{node}" class="ocf" provider="pacemaker" type="remote">'
               f'<instance_attributes id="{node}-ia">'
               f'<nvpair id="{node}-server" name="server" value="{self.addr(node)}"/>'
               f'<nvpair id="{node}-reconnect" name="reconnect_interval" value="15s"/>'
               f'</instance_attributes>'
               f'<operations><op id="{node}-monitor" name="monitor" interval="10s" timeout="15s"/></operations>'
               f'</primitive>')
        self.exec(viewer, ["cibadmin", "-C", "-o", "resources", "-X", xml], check=True)
        if wait:
            wait_for(lambda: node in self.online_remotes(viewer), 120, 0.3, what=f"remote node {node} online")
        log(f"remote node {node} online after {time.monotonic() - t0:.1f}s")
        return node

    def remove_remote(self, node):
        """Undo add_remote: the connection resource stopped and deleted, the node forgotten by the cluster and
        out of the fence host list, its daemons killed and its namespaces removed."""
        node = self.node_name(node)
        viewer = self.viewer()
        self.exec(viewer, ["crm_resource", "-r", node, "--meta", "-p", "target-role", "-v", "Stopped"])
        wait_for(lambda: node not in self.online_remotes(viewer), 120, 0.3, what=f"{node} disconnected")
        self.exec(viewer, ["cibadmin", "-D", "-o", "resources", "-X", f'<primitive id="{node}"/>'])
        self.exec(viewer, ["crm_node", "--force", "-R", node])
        for section, tag in (("nodes", "node"), ("status", "node_state")):  # what crm_node -R may leave
            self.exec(viewer, ["cibadmin", "-D", "-o", section, "-X", f'<{tag} id="{node}"/>'])
        self.stop_node(node)
        with open(f"{LAB}/remotes.list", "w", encoding="ascii") as f:
            f.write("".join(r + "\n" for r in self.remotes if r != node))
        self._set_fence_hosts(viewer)
        self._write_hosts()
        ns = self.netns(node)
        for kind in ("mnt", "uts"):
            f = f"{NSD}/{ns}.{kind}"
            if os.path.exists(f):
                run(["umount", f], check=False)
                os.unlink(f)
        run(["ip", "netns", "del", ns], check=False)
        log(f"remote node {node} removed")

    def kill_node(self, node, quiet=False):
        """Power cut: SIGKILL every process of the node, until none is left running. Returns {pid: start time}
        of the processes it killed (they may linger a moment as zombies until their parent reaps them)."""
        killed = {}
        for _ in range(50):
            pids = self.node_pids(node)
            if not pids:
                self.release_storage(node, quiet)
                return killed
            if not quiet:
                log(f"{node}: SIGKILL {' '.join(map(str, sorted(pids)))}")
            for pid in pids:
                st = proc_state(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                if st is not None:
                    killed[pid] = st[2]
            time.sleep(0.1)
        raise LabError(f"{node}: processes survive SIGKILL: " + ", ".join(
            f"{pid} {comm(pid)} (state {(proc_state(pid) or '?')[0]})" for pid in sorted(self.node_pids(node))))

    def release_storage(self, node, quiet=False):
        """The dead node's kernel state goes with it: its mounts of stand-in LV devices, and the devices."""
        nsfile = f"{NSD}/{self.netns(node)}.mnt"
        if os.path.exists(nsfile):
            gone = fence_module().release_storage(LAB, node, nsfile)
            if gone and not quiet:
                log(f"{node}: released {' '.join(gone)}")

    def signal_node(self, node, sig):
        for pid in self.node_pids(node):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def start_node(self, node):
        """(Re)boot a node after kill/fence/stop: clean /run and /dev/shm like a reboot, start the daemons."""
        node = self.node_name(node)
        if self.alive(node):
            log(f"{node} already running")
            return
        t0 = time.monotonic()
        self.kill_node(node, quiet=True)
        self._reset_run(node)
        self.exec(node, ["find", "/dev/shm", "-mindepth", "1", "-delete"])
        self._reset_dm(node)
        if self.is_remote(node):
            if self.libvirt_enabled():
                self.start_libvirtd(node)
            self._start_remoted(node)
            viewer = self.viewer()  # the cluster reconnects within the remote resource's reconnect_interval
            wait_for(lambda: node in self.online_remotes(viewer), 180, 0.3,
                     what=f"{node} online (seen from {viewer})")
            log(f"{node} online again after {time.monotonic() - t0:.1f}s")
            return
        self._start_corosync(node)
        wait_for(lambda: self._corosync_ready(node), 30, what=f"corosync on {node}")
        if self.libvirt_enabled():  # before pacemaker, as a boot would: its probes must find libvirtd
            self.start_libvirtd(node)
        self._start_pacemaker(node)
        others = [n for n in self.nodes if n != node and self.alive(n)]
        viewer = others[0] if others else node
        wait_for(lambda: node in self.online(viewer), 120, 0.3, what=f"{node} online (seen from {viewer})")
        log(f"{node} online again after {time.monotonic() - t0:.1f}s")

    def stop_node(self, node, timeout=60):
        """Graceful shutdown of one node: pacemakerd (stops its resources), then corosync."""
        node = self.node_name(node)
        d = self.ndir(node)
        daemons = ((("pacemaker-remoted", timeout),) if self.is_remote(node)
                   else (("pacemakerd", timeout), ("corosync", 30)))
        for name, limit in daemons:
            pid = pidfile_alive(f"{d}/{name}.pid")
            if pid:
                signal_pid(pid, signal.SIGTERM)
                if not wait_gone(pid, limit):
                    log(f"{node}: {name} {pid} still running after {limit}s, SIGKILL")
                    signal_pid(pid, signal.SIGKILL)
        self.kill_node(node, quiet=True)

    def down(self, timeout=60, settle=30):
        """Stop everything the rig started and remove every trace of it (namespaces, mounts, files). Returns only
        when nothing of it is left: no process of any node (not even a zombie its parent has yet to reap), no
        namespace, no loop device, no mount; waits up to ``settle`` seconds for that, then raises LabError naming
        what refuses to go (the files then stay, so that `down` can be run again)."""
        t0 = time.monotonic()
        nodes = self.all_nodes
        seen = {}  # pid -> start time of every process of the lab met on the way
        for name, limit in (("pacemaker-remoted", timeout), ("pacemakerd", timeout), ("corosync", 30)):
            pids = {}
            for n in nodes:
                pid = pidfile_alive(f"{self.ndir(n)}/{name}.pid")
                if pid:
                    seen[pid] = proc_start(pid)
                    signal_pid(pid, signal.SIGTERM)
                    pids[n] = pid
            for n, pid in pids.items():
                if not wait_gone(pid, limit):
                    log(f"{n}: {name} {pid} stuck after {limit}s, SIGKILL")
                    signal_pid(pid, signal.SIGKILL)
        existing = run(["ip", "netns", "list"], check=False).stdout.split()
        known = set(nodes) | {n[len(PREFIX) + 1:] for n in existing
                              if n.startswith((PREFIX + "-n", PREFIX + "-r"))}
        for n in sorted(known):
            for pid in self.node_pids(n):
                st = proc_state(pid)
                if st is not None:
                    seen[pid] = st[2]
            seen.update(self.kill_node(n, quiet=True))
            ns = self.netns(n)
            for kind in ("mnt", "uts"):
                f = f"{NSD}/{ns}.{kind}"
                if os.path.exists(f):
                    run(["umount", f], check=False)
                    os.unlink(f)
            if ns in existing:
                run(["ip", "netns", "del", ns])
        if BRNS in existing:
            run(["ip", "netns", "del", BRNS])
        for target in sorted(mounts_under(NSD), reverse=True):  # the SAN admin's namespace (lab.sanstorage)
            if target != NSD:
                run(["umount", target], check=False)
        if os.path.isdir(NSD) and run(["mountpoint", "-q", NSD], check=False).returncode == 0:
            run(["umount", NSD])
        left = self._settle({p: t for p, t in seen.items() if t is not None}, settle)
        if left:
            raise LabError("teardown incomplete after %ds, left: %s; run `pyralab.py down` again once it is gone"
                           % (settle, "; ".join(left)))
        if os.path.isdir(RUN):
            shutil.rmtree(RUN)
        if os.path.exists(FENCE_DST):
            os.unlink(FENCE_DST)
        if os.path.isdir(LAB):
            shutil.rmtree(LAB)
        dmstandin.release_mountpoint()
        log(f"down after {time.monotonic() - t0:.1f}s: nothing of the rig is left")

    def _settle(self, seen, settle):
        """Wait until leftovers() is empty (re-detaching loop devices, re-killing stragglers); what is left."""
        end = time.monotonic() + settle
        while True:
            detach_lab_loops()
            left = leftovers(seen)
            if not left or time.monotonic() > end:
                break
            for pid, start in seen.items():
                st = proc_state(pid)
                if st is not None and st[2] == start and st[0] != "Z":
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.1)
        return left

    # ---- queries used by tests and the demo
    def viewer(self, exclude=()):
        for n in self.nodes:
            if n not in exclude and self.alive(n):
                return n
        raise LabError("no live node to ask")

    def where(self, rsc, viewer=None):
        """Nodes a resource is active on, as the cluster sees it (crm_resource --locate)."""
        res = self.exec(viewer or self.viewer(), ["crm_resource", "--locate", "-r", rsc, "-Q"], timeout=20)
        if res.returncode != 0:
            return []
        return sorted(line.strip() for line in res.stdout.splitlines() if line.strip())

    def mon(self, viewer=None):
        return self.exec(viewer or self.viewer(), ["crm_mon", "-1", "-r", "-f"], timeout=20).stdout

    def settle(self, timeout=90, viewer=None):
        """Wait until the cluster has no pending actions (crm_resource --wait)."""
        res = self.exec(viewer or self.viewer(), ["crm_resource", "--wait", f"--timeout={timeout}s"],
                        timeout=timeout + 30)
        if res.returncode != 0:
            raise LabError(f"cluster did not settle in {timeout}s: {res.stderr.strip()}")

    def fence_calls(self):
        try:
            with open(f"{LAB}/fence/calls.log", encoding="utf-8") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def pacemaker_log(self, node):
        try:
            with open(f"{self.ndir(node)}/var-log-pacemaker/pacemaker.log", encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def unplug(self, node):
        """Detach the shared storage from one node (its /var/tmp/pyra-pcmk/shared becomes an empty dir)."""
        self.exec(node, ["umount", "-l", SHARED], check=True)

    def plug(self, node):
        if self.exec(node, ["mountpoint", "-q", SHARED]).returncode != 0:
            self.exec(node, ["mount", "--bind", STORAGE, SHARED], check=True)

    def partition(self, node):
        run(["ip", "-n", BRNS, "link", "set", f"{self.netns(node)}-p", "down"])

    def heal(self, node=None):
        for n in ([node] if node else self.all_nodes):
            run(["ip", "-n", BRNS, "link", "set", f"{self.netns(n)}-p", "up"])

    def status(self):
        if not self.nodes:
            return "pyralab is down\n"
        out = []
        for n in self.nodes:
            d = self.ndir(n)
            out.append(f"{n}: corosync={pidfile_alive(d + '/corosync.pid') or '-'} "
                       f"pacemakerd={pidfile_alive(d + '/pacemakerd.pid') or '-'}")
        try:
            out.append(self.mon())
        except LabError as e:
            out.append(str(e))
        return "\n".join(out) + "\n"


REMOTED_CACHE = "/var/cache/pyra-test/pacemaker-remote"


def remoted_binary():
    """pacemaker-remoted for the lab's remote nodes. Debian's pacemaker-remote package conflicts with pacemaker
    (installing it removes the cluster stack: it did, under a running soak), so the lab never installs it: the
    package of the installed pacemaker's version is downloaded once and unpacked into REMOTED_CACHE; its
    binary uses the libraries pacemaker already installed."""
    if os.access("/usr/sbin/pacemaker-remoted", os.X_OK):  # a distribution that ships it with pacemaker
        return "/usr/sbin/pacemaker-remoted"
    version = run(["dpkg-query", "-W", "-f", "${Version}", "pacemaker"]).stdout.strip()
    root = f"{REMOTED_CACHE}/{version}"
    binary = f"{root}/usr/sbin/pacemaker-remoted"
    if os.access(binary, os.X_OK):
        return binary
    work = f"{REMOTED_CACHE}/download"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o777)  # apt's _apt user writes the download there
    run(["apt-get", "download", f"pacemaker-remote={version}"], cwd=work, timeout=300)
    debs = [f for f in os.listdir(work) if f.endswith(".deb")]
    if len(debs) != 1:
        raise LabError(f"apt-get download pacemaker-remote={version} gave {debs}")
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg-deb", "-x", f"{work}/{debs[0]}", root], timeout=120)
    shutil.rmtree(work, ignore_errors=True)
    return binary


def fence_module():
    """lab/fence_pyralab as a module (its power-off semantics are shared with kill)."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("fence_pyralab", FENCE_SRC)
    spec = importlib.util.spec_from_loader("fence_pyralab", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def mounts_under(path):
    """Mount points at or below path in this mount namespace."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            target = line.split()[4]
            if target == path or target.startswith(path.rstrip("/") + "/"):
                out.append(target)
    return out


def lab_loops():
    """[(loop device, backing file)] of the rig: over a file of the rig (LUNs), or over such a loop device (the
    dm stand-in's LV devices)."""
    res = run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], check=False)
    rows = [line.split(None, 1) for line in res.stdout.splitlines() if len(line.split(None, 1)) == 2]
    luns = {name for name, back in rows if back.strip().startswith(LAB + "/")}

    def backing(back):
        # a LUN opened in a node's namespace that is gone reads as "/loopN" (its path in the detached /dev)
        back = back.strip()
        return "/dev" + back if back not in luns and "/dev" + back in luns else back
    return [(name, backing(back)) for name, back in rows if name in luns or backing(back) in luns]


def leftovers(pids=None):
    """What is left of the rig on this machine, one line each (empty: nothing). ``pids``: {pid: start time} of
    processes the rig had, which must be gone from /proc altogether (a zombie counts as left)."""
    left = []
    for pid, start in sorted((pids or {}).items()):
        if still_there(pid, start):
            st = proc_state(pid)
            what = "a zombie its parent %d (%s) has not reaped" % (st[1], comm(st[1])) if st[0] == "Z" else \
                "refuses to die after SIGKILL (state %s)" % st[0]
            left.append(f"process {pid} {comm(pid)}: {what}")
    for ns in run(["ip", "netns", "list"], check=False).stdout.split():
        if ns.startswith(PREFIX + "-"):
            left.append(f"network namespace {ns}")
    for name, back in lab_loops():
        left.append(f"loop device {name} ({back}){holders_of(name)}")
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            source = fields[fields.index("-") + 2] if "-" in fields else ""
            if any(x in fields[4] or x in fields[3] for x in (LAB, RUN)) or source.startswith(PREFIX) \
                    or source == dmstandin.OVERLAY:
                left.append(f"mount {fields[4]} ({source})")
    return left


def holders_of(dev):
    """Where a loop device that stays attached is still mounted (", mounted on ... in the mount namespace of PID n
    (comm)"), or what else may hold it."""
    try:
        rdev = os.stat(dev).st_rdev
    except OSError:
        return ""
    number = "%d:%d" % (os.major(rdev), os.minor(rdev))
    seen = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ino = os.stat(f"/proc/{name}/ns/mnt").st_ino
            if ino in seen:
                continue
            seen.add(ino)
            with open(f"/proc/{name}/mountinfo", encoding="utf-8") as f:
                for line in f:
                    if line.split()[2] == number:
                        return f", mounted on {line.split()[4]} in the mount namespace of PID {name} ({comm(name)})"
        except (OSError, IndexError):
            continue
    return (", still in use, though no process's mount namespace has it mounted (a namespace no process is in,"
            " kept by a copy of its namespace file in another mount namespace?)")


def detach_lab_loops():
    """Detach every loop device backed by a file of the rig (LUN images), stand-in LV devices over them first."""
    loops = lab_loops()
    luns = {name for name, back in loops if back.startswith(LAB + "/")}
    for name, _ in sorted(loops, key=lambda row: row[0] in luns):
        run(["losetup", "-d", name], check=False)


def reaper(argv):
    """Run argv as a child subreaper (the libvirt rig's): PID 1 here reaps lazily, and libvirt's destroy waits
    until QEMU is really gone."""
    from lab.rigs.libvirt_reaper import run
    return run(argv)


def main(argv):
    if len(argv) < 1:
        sys.stderr.write(__doc__.split("CLI:")[1])
        return 2
    cmd, args = argv[0], argv[1:]
    lab = Lab()
    try:
        if cmd == "_inside":
            Lab._inside(args[0])
        elif cmd == "_dmreset":
            dmstandin.reset(Lab.dm_state(args[0]))
        elif cmd == "_reaper":
            return reaper(args)
        elif cmd == "libvirt":
            lab.enable_libvirt()
        elif cmd == "up":
            lab.up(int(args[0]) if args else 3)
        elif cmd == "remote":
            lab.add_remote(args[0] if args else None)
        elif cmd == "down":
            lab.down()
        elif cmd == "status":
            sys.stdout.write(lab.status())
        elif cmd == "mon":
            sys.stdout.write(lab.mon())
        elif cmd == "exec":
            node = lab.node_name(args[0])
            os.execvpe("nsenter", lab.ns_argv(node) + args[1:],
                       dict(CLEAN_ENV, TERM=os.environ.get("TERM", "dumb")))
        elif cmd == "kill":
            node = lab.node_name(args[0])
            t0 = time.monotonic()
            lab.kill_node(node)
            log(f"{node} killed in {time.monotonic() - t0:.2f}s")
        elif cmd == "start":
            lab.start_node(args[0])
        elif cmd == "stop":
            lab.stop_node(args[0])
        elif cmd in ("freeze", "thaw"):
            node = lab.node_name(args[0])
            lab.signal_node(node, signal.SIGSTOP if cmd == "freeze" else signal.SIGCONT)
            log(f"{node}: {'frozen (SIGSTOP)' if cmd == 'freeze' else 'thawed (SIGCONT)'}")
        elif cmd == "partition":
            lab.partition(lab.node_name(args[0]))
        elif cmd == "heal":
            lab.heal(lab.node_name(args[0]) if args else None)
        elif cmd == "unplug":
            lab.unplug(lab.node_name(args[0]))
        elif cmd == "plug":
            lab.plug(lab.node_name(args[0]))
        else:
            sys.stderr.write(f"unknown command {cmd!r}\n" + __doc__.split("CLI:")[1])
            return 2
    except LabError as e:
        log(f"ERROR: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
