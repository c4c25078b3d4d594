"""The operator's command `pyra` in the 3-node lab, run on the nodes as an admin would (the source tree's
sbin/pyra, which every node sees): list --json against crm_mon; vm console through a pty from a node that does
not run the guest (the guest's serial output is read, a command typed into its shell answers); ctrlaltdel and
sysrq reach the guest (its console log shows them); reset makes it boot again (a fresh "ready" on its
startup_signal channel); the one-line errors and their exit codes; and node evacuate moving 3 guests off a node
live, against the sum of the same three migrations done bare with crm_resource --move (both times printed,
nothing asserted on them).

Three TCG guests g1..g3 (allow-migrate) with a pty serial console logged to the shared storage.
"""
import json
import os
import re
import select
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from lab import REPO
from lab import clusterops as co
from lab import pyralab

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.slow]

PYRA = ["/usr/bin/python3", os.path.join(REPO, "sbin", "pyra")]
GUESTS = ("pyra-cli-g1", "pyra-cli-g2", "pyra-cli-g3")
RSC = {g: "vm-" + g.rsplit("-", 1)[1] for g in GUESTS}  # pyra-cli-g1 -> vm-g1
HOME = "n1"  # where the three start

from lab.rigs import libvirt_node  # noqa: E402
from lab.rigs.guest import build  # noqa: E402


def console_log(guest):
    return f"{pyralab.STORAGE}/{guest}.console"


def read_log(guest):
    try:
        with open(console_log(guest), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def pty_xml(guest, images):
    """The lab guest with its serial on a pty (interactive console) that libvirt also logs to a file, rebooting
    on reset."""
    xml = libvirt_node.guest_xml(guest, images, console=f"{pyralab.SHARED}/{guest}.console")
    xml = re.sub(r"<serial type='file'>.*?</serial>",
                 f"<serial type='pty'><log file='{pyralab.SHARED}/{guest}.console' append='on'/>"
                 "<target port='0'/></serial>", xml, flags=re.S)
    xml = re.sub(r"<console type='file'>.*?</console>",
                 "<console type='pty'><target type='serial' port='0'/></console>", xml, flags=re.S)
    # a reset (virDomainReset) must reboot it: with on_reboot=destroy QEMU runs with -no-reboot and quits instead
    return xml.replace("<on_reboot>destroy</on_reboot>", "<on_reboot>restart</on_reboot>")


def pyra(lab, node, *args, timeout=300):
    res = lab.exec(node, PYRA + list(args), timeout=timeout)
    return res


def other(lab, *nodes):
    return next(n for n in lab.nodes if n not in nodes)


def settled_on(lab, rsc, node, timeout):
    """Poll crm_mon until rsc is Started on node, nothing pending (as pyra's own wait does)."""
    co.wait_where(lab, rsc, lambda w: w == [node], timeout)
    pyralab.wait_for(lambda: co.running(lab, [rsc]) and lab.where(rsc) == [node], timeout, 0.5,
                     what=f"{rsc} settled on {node}")


@pytest.fixture(scope="module")
def guests(lab):
    images = build.build()
    lab.enable_libvirt()
    for g in GUESTS:
        with open(f"{pyralab.STORAGE}/{g}.xml", "w", encoding="utf-8") as f:
            f.write(pty_xml(g, images))
        try:
            os.unlink(console_log(g))
        except OSError:
            pass
    try:
        for g in GUESTS:
            co.crm(lab, "configure", "primitive", RSC[g], "ocf:pyra:TransientDomain",
                   "params", f"config={pyralab.SHARED}/{g}.xml", "op", "monitor", "interval=10s", "timeout=30s",
                   "op", "migrate_to", "timeout=120s", "op", "migrate_from", "timeout=60s",
                   "meta", "allow-migrate=true", "target-role=Stopped")
            co.crm(lab, "configure", "location", f"home-{RSC[g]}", RSC[g], "100:", HOME)
        for g in GUESTS:
            co.sh(lab, ["crm_resource", "-r", RSC[g], "--meta", "-p", "target-role", "-v", "Started"])
        for g in GUESTS:
            settled_on(lab, RSC[g], HOME, 180)
        for g in GUESTS:
            co.crm(lab, "configure", "delete", f"home-{RSC[g]}")
        lab.settle(120)
        yield {g: RSC[g] for g in GUESTS}
    finally:
        co.remove(lab, *RSC.values())
        for g in GUESTS:
            for p in (f"{pyralab.STORAGE}/{g}.xml",):
                try:
                    os.unlink(p)
                except OSError:
                    pass


def test_list_json_matches_crm_mon(cluster, guests):
    node = cluster.viewer()
    res = pyra(cluster, node, "list", "--json")
    assert res.returncode == 0, res.stderr
    listed = {d["resource"]: d for d in json.loads(res.stdout)}
    mon = ET.fromstring(co.sh(cluster, ["crm_mon", "--output-as=xml"], node=node).stdout)
    seen = {}
    for r in mon.iter("resource"):
        agent = r.get("resource_agent") or ""
        if agent.startswith("ocf:pyra:"):
            seen[r.get("id")] = ([n.get("name") for n in r.iter("node")] if r.get("active") == "true" else [],
                                 r.get("role"))
        else:
            assert r.get("id") not in listed
    assert set(listed) == set(seen)
    for rid, (nodes, role) in seen.items():
        assert listed[rid]["nodes"] == nodes and listed[rid]["role"] == role, (rid, listed[rid], nodes, role)
    for rsc in guests.values():
        assert listed[rsc]["where"] == HOME and listed[rsc]["agent"] == "TransientDomain"
        assert listed[rsc]["memory"] == "128" and listed[rsc]["cpu"] == "1"
    table = pyra(cluster, node, "list")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["RESOURCE", "AGENT", "WHERE"]


def _expect(fd, pattern, timeout, seen):
    """Read the pty until pattern (bytes regex) shows up; returns everything read."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if re.search(pattern, seen[0]):
            return seen[0]
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen[0] += data
    raise AssertionError(f"no {pattern!r} on the console within {timeout}s; got {seen[0][-2000:]!r}")


def test_console_from_a_node_not_running_the_guest(cluster, guests):
    guest = GUESTS[0]
    runs_on = cluster.where(RSC[guest])[0]
    node = other(cluster, runs_on)
    where = pyra(cluster, node, "vm", guest, "where")       # by domain name
    assert (where.returncode, where.stdout.strip()) == (0, runs_on), where.stderr
    info = pyra(cluster, node, "vm", guest, "info", "--json")
    assert info.returncode == 0, info.stderr
    doc = json.loads(info.stdout)
    assert doc["cluster"]["node"] == runs_on and doc["cluster"]["uri"] == f"qemu+tcp://{runs_on}/system"
    assert doc["libvirt"]["state"] == "running" and doc["libvirt"]["vcpus"] == 1
    assert doc["libvirt"]["memory_mib"] == 128 and doc["libvirt"]["name"] == guest
    master, slave = os.openpty()
    env = dict(pyralab.CLEAN_ENV, TERM="dumb")
    proc = subprocess.Popen(cluster.ns_argv(node) + PYRA + ["vm", RSC[guest], "console"], stdin=slave,
                            stdout=slave, stderr=slave, env=env, cwd="/", start_new_session=True)
    os.close(slave)
    seen = [b""]
    try:
        _expect(master, rb"Escape character is \^\]", 30, seen)
        os.write(master, b"\r")
        _expect(master, rb"# ", 30, seen)                   # the guest's shell prompt on ttyS0
        os.write(master, b"echo pyra-$((6*7)) $(cat /proc/sys/kernel/hostname)\r")
        _expect(master, rb"pyra-42 ", 30, seen)              # only the guest's shell computes 42
        os.write(master, b"\x1d")                           # ^]
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert b"pyra-42" in seen[0]


def test_ctrlaltdel_sysrq_and_reset_reach_the_guest(cluster, guests):
    guest = GUESTS[1]
    runs_on = cluster.where(RSC[guest])[0]
    node = other(cluster, runs_on)
    before = read_log(guest)
    res = pyra(cluster, node, "vm", RSC[guest], "ctrlaltdel")
    assert res.returncode == 0, res.stderr
    pyralab.wait_for(lambda: "pyra-guest: ctrlaltdel" in read_log(guest)[len(before):], 30, 0.5,
                     what="ctrl-alt-del in the guest's console log")
    res = pyra(cluster, node, "vm", guest, "sysrq", "h")
    assert res.returncode == 0, res.stderr
    pyralab.wait_for(lambda: "sysrq: HELP" in read_log(guest)[len(before):], 30, 0.5,
                     what="sysrq help in the guest's console log")
    res = pyra(cluster, node, "vm", guest, "nmi")
    assert res.returncode == 0, res.stderr
    pyralab.wait_for(lambda: "NMI received" in read_log(guest)[len(before):], 30, 0.5,
                     what="the NMI in the guest's console log")
    boots = read_log(guest).count("init started")
    res = pyra(cluster, node, "vm", guest, "reset")
    assert res.returncode == 0, res.stderr
    # it boots again and offers its ready handshake again on the startup_signal channel
    xml = cluster.exec(runs_on, ["virsh", "dumpxml", guest], check=True).stdout
    path = cluster.node_path(runs_on, libvirt_node.channel_path_from_xml(xml))
    line = libvirt_node.channel_exchange(path, None, "ready ", timeout=120)
    assert line.startswith("ready ")
    assert read_log(guest).count("init started") == boots + 1
    assert cluster.where(RSC[guest]) == [runs_on] and len(co.qemu_of(guest)) == 1


def test_migrate_and_unmove_with_progress_on_a_tty(cluster, guests):
    rsc = RSC[GUESTS[0]]
    src = cluster.where(rsc)[0]
    dst = other(cluster, src)
    before = len(co.ops(cluster, rsc))
    master, slave = os.openpty()
    proc = subprocess.Popen(cluster.ns_argv(dst) + PYRA + ["vm", rsc, "migrate", dst, "--timeout", "120"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=dict(pyralab.CLEAN_ENV),
                            cwd="/", start_new_session=True)
    os.close(slave)
    seen = [b""]
    try:
        _expect(master, rb"\[ *\d+s\] " + rsc.encode() + rb": " + dst.encode() + rb"\r?\n", 150, seen)
        assert proc.wait(timeout=30) == 0, seen[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert b"\r\x1b[K" in seen[0]                           # the state line is rewritten in place on a TTY
    assert cluster.where(rsc) == [dst]
    seq = [(o.op, o.node) for o in co.ops(cluster, rsc)[before:] if o.op not in ("monitor", "probe")]
    assert seq[:2] == [("migrate_to", src), ("migrate_from", dst)], seq
    cons = co.sh(cluster, ["cibadmin", "-Q", "-o", "constraints"]).stdout
    assert f"cli-prefer-{rsc}" in cons and "lifetime" in cons   # a move constraint with a lifetime
    res = pyra(cluster, src, "vm", rsc, "unmove")
    assert res.returncode == 0, res.stderr
    assert f"cli-prefer-{rsc}" not in co.sh(cluster, ["cibadmin", "-Q", "-o", "constraints"]).stdout
    res = pyra(cluster, src, "vm", rsc, "migrate", HOME, "--timeout", "120")   # plain lines when not a TTY
    assert res.returncode == 0 and "\r" not in res.stdout, res.stdout + res.stderr
    pyra(cluster, src, "vm", rsc, "unmove")


def test_one_line_errors_and_exit_codes(cluster, guests):
    node = cluster.viewer()
    cases = [(["vm", "no-such-guest", "where"], 3, "no pyra guest"),
             (["vm", "fence-lab", "info"], 4, "only on pyra resources"),
             (["vm", RSC[GUESTS[0]], "migrate", "n9"], 3, "no node n9"),
             (["node", "n9", "evacuate"], 3, "no node n9"),
             (["vm", RSC[GUESTS[0]], "sysrq", "F1"], 2, "sysrq takes")]
    for args, code, words in cases:
        res = pyra(cluster, node, *args)
        assert res.returncode == code and words in res.stderr, (args, res.returncode, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    # the host is no cluster node: no CIB there
    res = subprocess.run(PYRA + ["list"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 5 and "cannot be reached" in res.stderr, res.stderr
    # a stopped guest: console says it is stopped and where it last ran
    rsc = RSC[GUESTS[2]]
    last = cluster.where(rsc)[0]
    res = pyra(cluster, node, "vm", rsc, "stop", "--timeout", "120")
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        res = pyra(cluster, node, "vm", rsc, "console")
        assert res.returncode == 8 and f"last ran on {last}" in res.stderr, res.stderr
    finally:
        res = pyra(cluster, node, "vm", rsc, "start", "--timeout", "180")
        assert res.returncode == 0, res.stdout + res.stderr
    if cluster.where(rsc) != [HOME]:
        res = pyra(cluster, node, "vm", rsc, "migrate", HOME, "--timeout", "180")
        assert res.returncode == 0, res.stdout + res.stderr
        pyra(cluster, node, "vm", rsc, "unmove")


def test_evacuate_three_guests_live(cluster, guests):
    rscs = [RSC[g] for g in GUESTS]
    for r in rscs:
        if cluster.where(r) != [HOME]:
            co.sh(cluster, ["crm_resource", "--move", "-r", r, "-N", HOME])
            settled_on(cluster, r, HOME, 180)
            co.sh(cluster, ["crm_resource", "--clear", "-r", r])
    dst = other(cluster, HOME)
    # the bare way: crm_resource --move one by one, each until it settled
    bare = {}
    for r in rscs:
        t = co.Timer()
        co.sh(cluster, ["crm_resource", "--move", "-r", r, "-N", dst])
        settled_on(cluster, r, dst, 180)
        bare[r] = t()
    for r in rscs:
        co.sh(cluster, ["crm_resource", "--clear", "-r", r])
        co.sh(cluster, ["crm_resource", "--move", "-r", r, "-N", HOME])
        settled_on(cluster, r, HOME, 180)
        co.sh(cluster, ["crm_resource", "--clear", "-r", r])
    before = {r: len(co.ops(cluster, r)) for r in rscs}
    viewer = other(cluster, HOME)
    t = co.Timer()
    res = pyra(cluster, viewer, "node", HOME, "evacuate", "--timeout", "300")
    wall = t()
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        rows = {ln.split()[0]: ln.split() for ln in res.stdout.splitlines() if ln.split()[:1] and
                ln.split()[0] in rscs}
        assert set(rows) == set(rscs), res.stdout
        for r in rscs:
            now = cluster.where(r)
            assert len(now) == 1 and now[0] != HOME
            assert rows[r][1] == HOME and rows[r][2] == now[0] and rows[r][4] == "live", rows[r]
            seq = [(o.op, o.node) for o in co.ops(cluster, r)[before[r]:] if o.op not in ("monitor", "probe")]
            assert seq[:2] == [("migrate_to", HOME), ("migrate_from", now[0])], seq   # live, no restart
            assert len(co.qemu_of(next(g for g in GUESTS if RSC[g] == r))) == 1
        listed = json.loads(pyra(cluster, viewer, "list", "--json").stdout)
        assert not [d for d in listed if HOME in d["nodes"]]
    finally:
        for r in rscs:
            co.sh(cluster, ["crm_resource", "--clear", "-r", r], check=False)
    total = sum(bare.values())
    print(f"\nevacuation of 3 guests off {HOME}: {wall:.1f} s wall (pyra node evacuate); bare "
          f"crm_resource --move one by one: {' + '.join(f'{v:.1f}' for v in bare.values())} = {total:.1f} s")
    print(res.stdout)
    co.record("pyra node evacuate (3 guests, live, wall)", wall, agent="TransientDomain", kind="evacuate-3")
    co.record("3 bare migrations one by one (sum)", total, agent="TransientDomain", kind="bare-migrations-3")


def test_maintenance_on_and_off(cluster, guests):
    rscs = [RSC[g] for g in GUESTS]
    busy = sorted({cluster.where(r)[0] for r in rscs})
    target = busy[0]
    viewer = other(cluster, target)
    res = pyra(cluster, viewer, "node", target, "maintenance", "on", "--timeout", "300")
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"{target}: in standby" in res.stdout
        for r in rscs:
            assert target not in cluster.where(r)
        mon = ET.fromstring(co.sh(cluster, ["crm_mon", "--output-as=xml"], node=viewer).stdout)
        assert [n.get("standby") for n in mon.iter("node") if n.get("name") == target][:1] == ["true"]
        cons = co.sh(cluster, ["cibadmin", "-Q", "-o", "constraints"], node=viewer).stdout
        assert "cli-ban-" not in cons                          # standby keeps it empty; the bans are gone
    finally:
        off = pyra(cluster, viewer, "node", target, "maintenance", "off")
    assert off.returncode == 0, off.stderr
    mon = ET.fromstring(co.sh(cluster, ["crm_mon", "--output-as=xml"], node=viewer).stdout)
    assert [n.get("standby") for n in mon.iter("node") if n.get("name") == target][:1] == ["false"]
