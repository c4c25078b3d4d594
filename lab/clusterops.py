"""Cluster-side helpers for the scenarios and the demo: run crm/pcs, locate resources, read what Pacemaker did.

Owns the reading of Pacemaker's per-node logs ("Result of <op> operation for <rsc> on <node>: ... rc=N") into
operation records, so a test can assert "migrate_to ran on the source, migrate_from on the target, no start",
or "started exactly once", from Pacemaker's own account rather than from the agent.
"""
import os
import re
import time

from lab import pyralab

TIMES = []  # (what, seconds, agent, kind): scenario 7, printed and written to TIMINGS at the end of a session
TIMINGS = "/var/tmp/pyra-pcmk-timings.json"  # beside the rig's dir, which `down` removes


def cmdlines():
    """(pid, raw cmdline) of every process on this machine, whatever node (namespace) it belongs to."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    yield int(name), f.read()
            except OSError:
                continue


def qemu_of(guest):
    """PIDs of every QEMU process on this machine running ``guest`` (whatever node it belongs to): how many
    copies of a guest really run, independent of what Pacemaker or libvirt believe."""
    return [pid for pid, cmd in cmdlines() if f"guest={guest},".encode() in cmd]


def lxc_container(cmd):
    """The container name of an `[lxc monitor] <lxcpath> <name>` cmdline, else None."""
    if cmd.startswith(b"[lxc monitor]"):
        words = cmd.replace(b"\0", b" ").split()
        return words[-1].decode(errors="replace")
    return None


def lxc_monitors(name):
    """PIDs of every LXC monitor of container ``name`` on this machine (whatever node started it): how many
    copies of an LXC container really run."""
    return [pid for pid, cmd in cmdlines() if lxc_container(cmd) == name]


def guest_answers(lab, node, guest, token):
    """The guest running on ``node`` answers a ping on its startup_signal channel (read from its live XML)."""
    from lab.rigs import libvirt_node
    xml = lab.exec(node, ["virsh", "dumpxml", guest], check=True).stdout
    path = libvirt_node.channel_path_from_xml(xml)
    assert path, xml
    return libvirt_node.ping(lab.node_path(node, path), token)


def record(what, seconds, agent=None, kind=None):
    """Note a measured time; agent + kind (start, migrate, failover, ...) make it a row of the per-agent table."""
    TIMES.append((what, seconds, agent, kind))


def write_timings(path=TIMINGS):
    """{"agents": {agent: {kind: seconds}}, "all": [{what, seconds, agent, kind}]} as JSON; returns path."""
    import json
    table = {}
    for what, seconds, agent, kind in TIMES:
        if agent and kind:
            table.setdefault(agent, {})[kind] = round(seconds, 2)
    doc = {"agents": table, "all": [{"what": w, "seconds": round(s, 2), "agent": a, "kind": k}
                                    for w, s, a, k in TIMES]}
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path


EXEC_TIME = re.compile(r"pacemaker-execd.* (\S+) (\S+) \(call \d+, PID \d+\) exited with status \d+ "
                       r"\(execution time ([\d.]+)(ms|s)")


def exec_seconds(lab, rsc, op, node):
    """How long the agent itself took for the last `op` of rsc on node (pacemaker-execd's own log line)."""
    found = None
    for line in lab.pacemaker_log(node).splitlines():
        m = EXEC_TIME.search(line)
        if m and m.group(1) == rsc and m.group(2) == op:
            found = float(m.group(3)) / (1000.0 if m.group(4) == "ms" else 1.0)
    if found is None:
        raise AssertionError(f"no execution time of {rsc} {op} in {node}'s pacemaker.log")
    return found


ANSI = re.compile(r"\x1b\[[0-9;]*m")
RESULT = re.compile(r"^(\w+ +\d+ [\d:.]+) (\S+) pacemaker-controld.*Result of (\S+) operation for (\S+) on (\S+): "
                    r".*?rc=(\d+)")


def plain(text):
    return ANSI.sub("", text)


class Op:
    def __init__(self, stamp, node, op, rsc, rc):
        self.stamp, self.node, self.op, self.rsc, self.rc = stamp, node, op, rsc, rc

    def __repr__(self):
        return f"{self.stamp} {self.node} {self.op} {self.rsc} rc={self.rc}"


def ops(lab, rsc):
    """Every operation Pacemaker ran for rsc on any node, in time order (from the nodes' pacemaker.log)."""
    return ops_of(lab, [rsc]).get(rsc, [])


def ops_of(lab, rscs):
    """{rsc: its operations in time order} for every rsc in rscs, from one pass over the nodes' logs."""
    wanted = set(rscs)
    out = {}
    for node in lab.nodes:
        for line in lab.pacemaker_log(node).splitlines():
            if "Result of " not in line:
                continue
            m = RESULT.match(line)
            if m and m.group(4) in wanted:
                out.setdefault(m.group(4), []).append(Op(m.group(1), m.group(5), m.group(3), m.group(4),
                                                         int(m.group(6))))
    for found in out.values():
        found.sort(key=lambda o: o.stamp)
    return out


def sh(lab, argv, node=None, check=True, timeout=120):
    """Run an admin command on a live node; CompletedProcess with ANSI colours stripped."""
    res = lab.exec(node or lab.viewer(), argv, check=check, timeout=timeout)
    res.stdout, res.stderr = plain(res.stdout), plain(res.stderr)
    return res


def crm(lab, *args, check=True, timeout=120):
    """A crmsh command, then wait until the cluster has settled (what `crm -w` did: crmsh 5's -w first asks
    systemctl whether pacemaker.service is active, which fails on a node without systemd)."""
    res = sh(lab, ["crm"] + list(args), check=check, timeout=timeout)
    if res.returncode == 0:
        lab.settle(timeout)
    return res


def wait_where(lab, rsc, pred, timeout, what=None, exclude=()):
    """Poll crm_resource --locate (from a node not in exclude) until pred(nodes) is true; returns nodes."""
    found = []

    def check():
        found[:] = lab.where(rsc, viewer=lab.viewer(exclude))
        return pred(found)
    try:
        pyralab.wait_for(check, timeout, 0.2, what=what or f"{rsc} placement")
    except pyralab.LabError as e:
        raise AssertionError(f"{e}; {rsc} is on {found}\n{lab.mon(lab.viewer(exclude))}") from None
    return list(found)


def remove(lab, *rscs):
    """Stop and delete test resources, groups and location constraints, by id, and the resources' move
    constraints (quietly, whatever state they are in)."""
    for rsc in rscs:
        sh(lab, ["crm_resource", "--clear", "-r", rsc], check=False)
        sh(lab, ["crm_resource", "-r", rsc, "--meta", "-p", "target-role", "-v", "Stopped"], check=False)
    lab.settle(120)
    for rsc in rscs:  # constraints first: the schema refuses a resource deleted under a constraint naming it
        sh(lab, ["cibadmin", "-D", "-o", "constraints", "-X", f'<rsc_location id="{rsc}"/>'], check=False)
    for rsc in rscs:
        sh(lab, ["cibadmin", "-D", "-o", "resources", "-X", f'<primitive id="{rsc}"/>'], check=False)
        sh(lab, ["cibadmin", "-D", "-o", "resources", "-X", f'<group id="{rsc}"/>'], check=False)
        sh(lab, ["crm_resource", "--cleanup", "-r", rsc], check=False)
    sh(lab, ["crm_resource", "--cleanup"], check=False)
    left = [r for r in rscs if sh(lab, ["cibadmin", "-Q", "--xpath", f"//*[@id='{r}']"], check=False).returncode == 0]
    if left:
        raise AssertionError(f"still configured after remove: {left}\n{lab.mon()}")


def running(lab, rscs, exclude=()):
    """True when every resource in rscs is Started (no operation pending) on one node not in exclude.
    (crm_resource --locate already names the node while the start is still running.)"""
    import xml.etree.ElementTree as ET
    res = sh(lab, ["crm_mon", "-1", "-X"], node=lab.viewer(exclude), check=False)
    try:
        root = ET.fromstring(res.stdout)
    except ET.ParseError:
        return False
    state = {}
    for r in root.iter("resource"):
        nodes = [n.get("name") for n in r.iter("node")]
        state[r.get("id")] = (r.get("role") == "Started" and not r.get("pending") and len(nodes) == 1
                              and nodes[0] not in exclude)
    return all(state.get(r) for r in rscs)


def failed_actions(lab):
    """Failed operations the cluster currently remembers (crm_mon's XML <failures>)."""
    import xml.etree.ElementTree as ET
    res = sh(lab, ["crm_mon", "-1", "-X"], check=False)
    try:
        root = ET.fromstring(res.stdout)
    except ET.ParseError:
        return []
    return [dict(f.attrib) for f in root.iter("failure")]


def failed_besides(lab, nodes):
    """Failed actions other than the connections' of the remote ``nodes`` (their monitor fails in a power cut)."""
    return [f for f in failed_actions(lab) if not any(f.get("op_key", "").startswith(f"{n}_") for n in nodes)]


class Timer:
    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self):
        return time.monotonic() - self.t0
