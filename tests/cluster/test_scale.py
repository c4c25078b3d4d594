"""Issue 14, items 2 and 3: the largest cloud of this lab, and the cluster's big events at that size.

3 full nodes + 3 pacemaker_remote nodes (r2 r3 r4) run 32 pyra resources, 30 guests:
    vm-s1 .. vm-s4    TransientDomain TCG guests, live migration, XML on the shared storage
    ct-s01 .. ct-s24  ManageVE LXC containers (busybox), rootfs on the shared storage, migration=restart
    grp-sv1, grp-sv2  LVMFilesystem -> ManageVE: the container's config and rootfs on its own LUN
placed by utilization (placement-strategy=balanced): the guests publish cpu and memory from their XML, the
containers declare memory; r2 has the most room, so it ends up holding about a third of the guests.

Events, each asserted and timed (the cluster timing table and JSON, agent "scale 3+3"):
- cold start: the whole configuration loaded at once, until every resource is Started (probes included);
- a node joining: remote node r5 added while everything runs; every resource is probed there, no probe
  fails, nothing starts anywhere, r5's libvirtd never holds more client connections than there are guests;
- power cut of the node holding the most guests: fenced, every guest back exactly once;
- evacuation (`crm node standby`) of the node holding the most TCG guests: they move live (migrate_to and
  migrate_from, no stop), its containers are restarted elsewhere;
- the whole cluster stopped (every full node's Pacemaker at once: everything stops cleanly, nobody is
  fenced) and started again, until every resource is Started.
Throughout, a sampler counts every guest's QEMU processes and every container's LXC monitors on the whole
machine twice a second: never two of one container, never two QEMUs of a guest outside a live migration.
"""
import concurrent.futures
import os
import shutil
import signal
import threading
import time

import pytest

from lab import clusterops as co
from lab import pyralab, sanstorage

if os.environ.get("PYRA_TEST_REMOTE") != "1":  # opt-in: see README, `make test`
    pytest.skip("remote-node scenarios run with PYRA_TEST_REMOTE=1 (not yet verified on Debian 13)",
                allow_module_level=True)

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.lxc,
              pytest.mark.slow]

from lab.rigs import libvirt_node, lxc_ve  # noqa: E402
from lab.rigs.guest import build  # noqa: E402

AGENT = "scale 3+3"
REMOTES = ("r2", "r3", "r4")  # r1 is test_remote.py's: a name is not reused within a session
JOINER = "r5"
VMS = {f"vm-s{i}": f"pyra-pcmk-s{i}" for i in range(1, 5)}            # resource -> libvirt domain
CTS = {f"ct-s{i:02d}": f"pyra-ve-s{i:02d}" for i in range(1, 25)}      # resource -> container
GROUPS = {f"grp-sv{i}": (f"fs-sv{i}", f"ct-sv{i}", f"pyra-ve-sv{i}", f"pyra_scale{i}") for i in (1, 2)}
GUESTS = dict(VMS, **CTS, **{grp: name for grp, (_, _, name, _) in GROUPS.items()})  # guest resource -> name
PRIMITIVES = list(VMS) + list(CTS) + [p for fs, ct, _, _ in GROUPS.values() for p in (fs, ct)]
TOPS = list(VMS) + list(CTS) + list(GROUPS)  # what the cluster places: 30 guests
CT_MEMORY = 32
CAPACITY = {"memory": 1024, "cpu": 8}
BIG = {"r2": {"memory": 1280, "cpu": 8}}   # balanced placement leaves r2 about a third of the guests
LXCPATH = f"{pyralab.SHARED}/scale-lxc"
OPS_VM = ("op monitor interval=10s timeout=30s op start timeout=120s op stop timeout=120s "
          "op migrate_to timeout=120s op migrate_from timeout=60s")
OPS_CT = "op monitor interval=30s timeout=30s op start timeout=60s op stop timeout=60s"
OPS_FS = "op monitor interval=30s timeout=40s op start timeout=90s op stop timeout=90s"


def crm_config():
    out = []
    for rsc, dom in VMS.items():
        out.append(f"primitive {rsc} ocf:pyra:TransientDomain params config={pyralab.SHARED}/{dom}.xml "
                   f"meta allow-migrate=true {OPS_VM}")
    for rsc, name in CTS.items():
        out.append(f"primitive {rsc} ocf:pyra:ManageVE params veid={name} runtime=lxc lxc_path={LXCPATH} "
                   f"migration=restart meta allow-migrate=true utilization memory={CT_MEMORY} {OPS_CT}")
    for grp, (fs, ct, name, vg) in GROUPS.items():
        mnt = f"{sanstorage.MNT}/{vg}"
        out.append(f"primitive {fs} ocf:pyra:LVMFilesystem params vgname={vg} lvname=data directory={mnt} "
                   f"fstype=ext4 {OPS_FS}")
        out.append(f"primitive {ct} ocf:pyra:ManageVE params veid={name} runtime=lxc lxc_path={mnt}/lxc "
                   f"migration=restart utilization memory={CT_MEMORY} {OPS_CT}")
        out.append(f"group {grp} {fs} {ct}")
    return "\n".join(out) + "\n"


def instances():
    """{guest resource: number of QEMU processes / LXC monitors running it on this machine} (one /proc pass)."""
    by_name = {}
    for _, cmd in co.cmdlines():
        name = co.lxc_container(cmd)
        if name is None and b"guest=pyra-pcmk-s" in cmd:
            name = cmd.split(b"guest=", 1)[1].split(b",", 1)[0].decode(errors="replace")
        if name is not None:
            by_name[name] = by_name.get(name, 0) + 1
    return {rsc: by_name.get(name, 0) for rsc, name in GUESTS.items()}


class Sampler:
    """Counts every guest's instances twice a second in a thread; ``worst`` is the most seen at once."""

    def __init__(self):
        self.worst = {rsc: 0 for rsc in GUESTS}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for rsc, n in instances().items():
                self.worst[rsc] = max(self.worst[rsc], n)
            self.samples += 1
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def twice(self, allow_migrating=False):
        """Guests seen running twice at once (TCG guests may have two QEMUs while they migrate live)."""
        return {r: n for r, n in self.worst.items() if n > (2 if allow_migrating and r in VMS else 1)}


def placement(lab, exclude=()):
    """{guest resource (group for the LV ones): node} for everything placed, from one crm_mon."""
    import xml.etree.ElementTree as ET
    res = co.sh(lab, ["crm_mon", "-1", "-X"], node=lab.viewer(exclude), check=False)
    root = ET.fromstring(res.stdout)
    out = {}
    for r in root.iter("resource"):
        nodes = [n.get("name") for n in r.iter("node")]
        rid = r.get("id")
        rid = next((g for g, v in GROUPS.items() if rid in v[:2]), rid)
        if rid in TOPS and len(nodes) == 1:
            out[rid] = nodes[0]
    return out


def all_running(lab, exclude=(), timeout=600, what="every resource Started"):
    pyralab.wait_for(lambda: co.running(lab, PRIMITIVES, exclude=exclude), timeout, 1, what=what)


def set_capacity(lab, node):
    for name, value in BIG.get(node, CAPACITY).items():
        co.sh(lab, ["crm_attribute", "-N", node, "-z", "-n", name, "-v", str(value)])


@pytest.fixture(scope="module")
def cloud(lab):
    """The remote nodes, the guests' XML, the containers, the LUNs; cleaned away afterwards."""
    lab.enable_libvirt()
    images = build.build()
    t = co.Timer()
    for node in REMOTES:
        lab.add_remote(node)
    co.record(f"{len(REMOTES)} remote nodes added", t())
    for dom in VMS.values():
        with open(f"{pyralab.STORAGE}/{dom}.xml", "w", encoding="utf-8") as f:
            f.write(libvirt_node.guest_xml(dom, images, console=f"{pyralab.SHARED}/{dom}.console"))
    store = f"{pyralab.STORAGE}/scale-lxc"
    shutil.rmtree(store, ignore_errors=True)
    first = next(iter(CTS.values()))
    conf = lxc_ve.make_container(first, lxcpath=store)
    with open(conf, encoding="utf-8") as f:
        template = f.read().replace(pyralab.STORAGE + "/scale-lxc", LXCPATH)
    for name in CTS.values():  # copies of one busybox container (lxc-create for each would take a minute)
        if name != first:
            shutil.copytree(f"{store}/{first}", f"{store}/{name}", symlinks=True)
        with open(f"{store}/{name}/config", "w", encoding="utf-8") as f:
            f.write(template.replace(first, name))
    san = sanstorage.San(lab)
    for fs, ct, name, vg in GROUPS.values():
        san.lun(vg, size="48M")
        san.fill(vg, lambda path, name=name: lxc_ve.make_container(name, lxcpath=f"{path}/lxc"))
    for node in lab.nodes + list(REMOTES):
        set_capacity(lab, node)
    co.sh(lab, ["crm_attribute", "-t", "crm_config", "-n", "placement-strategy", "-v", "balanced"])
    yield lab
    # everything stopped at once, then deleted; the remote nodes removed; the settings as they were
    for rsc in TOPS:
        co.sh(lab, ["crm_resource", "--clear", "-r", rsc], check=False)
    co.sh(lab, ["crm_attribute", "-t", "crm_config", "-n", "stop-all-resources", "-v", "true"], check=False)
    try:
        lab.settle(300)
    finally:
        for rsc in list(GROUPS) + list(VMS) + list(CTS):
            kind = "group" if rsc in GROUPS else "primitive"
            co.sh(lab, ["cibadmin", "-D", "-o", "resources", "-X", f'<{kind} id="{rsc}"/>'], check=False)
        for node in list(lab.remotes):  # while stop-all-resources holds: their connections stay stopped
            lab.remove_remote(node)
        co.sh(lab, ["crm_attribute", "-t", "crm_config", "-n", "stop-all-resources", "-D"], check=False)
        co.sh(lab, ["crm_attribute", "-t", "crm_config", "-n", "placement-strategy", "-D"], check=False)
        for node in lab.nodes:
            for name in CAPACITY:
                co.sh(lab, ["crm_attribute", "-N", node, "-z", "-n", name, "-D"], check=False)
        co.sh(lab, ["crm_resource", "--cleanup"], check=False)
        san.destroy()
        shutil.rmtree(store, ignore_errors=True)
        for dom in VMS.values():
            for ext in ("xml", "console"):
                if os.path.exists(f"{pyralab.STORAGE}/{dom}.{ext}"):
                    os.unlink(f"{pyralab.STORAGE}/{dom}.{ext}")


def libvirtd_sockets(lab, node):
    return libvirt_node.socket_count(pyralab.pidfile_alive(f"{lab.ndir(node)}/libvirtd.pid"))


def test_scale_cold_start_join_power_cut_evacuation_and_cluster_restart(cluster, cloud):
    lab = cluster
    fenced_before = len(lab.fence_calls())

    # -- cold start: everything at once
    with open(f"{pyralab.STORAGE}/scale.crm", "w", encoding="utf-8") as f:
        f.write(crm_config())
    t = co.Timer()
    with Sampler() as s:
        co.sh(lab, ["crm", "configure", "load", "update", f"{pyralab.SHARED}/scale.crm"], timeout=300)
        all_running(lab)
        lab.settle(300)
    co.record(f"cold start of {len(PRIMITIVES)} resources on {len(lab.all_nodes)} nodes (all Started)", t(),
              agent=AGENT, kind="cold start")
    assert s.twice() == {} and s.samples > 0
    assert instances() == {r: 1 for r in GUESTS}
    where = placement(lab)
    assert set(where) == set(TOPS), where
    nodes_used = sorted(set(where.values()))
    assert any(lab.is_remote(n) for n in nodes_used) and len(nodes_used) >= 5, where
    assert co.failed_besides(lab, ()) == []

    # -- a node joins: every resource probed there, nothing started, bounded libvirtd connections
    t = co.Timer()
    with Sampler() as s:
        lab.add_remote(JOINER, wait=False)
        idle = libvirtd_sockets(lab, JOINER)
        peak = [idle]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], libvirtd_sockets(lab, JOINER))
                except OSError:
                    pass
                time.sleep(0.005)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            pyralab.wait_for(lambda: JOINER in lab.online_remotes(lab.viewer()), 120, 0.3, what=f"{JOINER} online")
            pyralab.wait_for(lambda: all(any(o.op == "probe" and o.node == JOINER for o in found)
                                         for found in co.ops_of(lab, PRIMITIVES).values())
                             and len(co.ops_of(lab, PRIMITIVES)) == len(PRIMITIVES), 300, 1,
                             what=f"every resource probed on {JOINER}")
            lab.settle(300)
        finally:
            done.set()
            sampler.join()
    co.record(f"node {JOINER} joins: {len(PRIMITIVES)} probes there, settled (its libvirtd: peak "
              f"{peak[0] - idle} client connections above idle)", t(), agent=AGENT, kind="join")
    history = co.ops_of(lab, PRIMITIVES)
    probes = {p: [o.rc for o in history[p] if o.op == "probe" and o.node == JOINER] for p in PRIMITIVES}
    assert probes == {p: [7] for p in PRIMITIVES}
    assert not any(o.op in ("start", "stop") and o.node == JOINER for p in PRIMITIVES for o in history[p])
    assert s.twice() == {} and instances() == {r: 1 for r in GUESTS}
    assert 0 <= peak[0] - idle <= len(VMS), (idle, peak)
    assert placement(lab) == where  # stickiness: nobody moved to the new node
    set_capacity(lab, JOINER)
    lab.settle(120)

    # -- power cut of the node holding the most guests
    counts = {}
    for node in where.values():
        counts[node] = counts.get(node, 0) + 1
    victim = max(sorted(counts), key=lambda n: counts[n])
    share = counts[victim] / len(TOPS)
    assert share >= 0.25, counts
    t = co.Timer()
    with Sampler() as s:
        lab.kill_node(victim)
        pyralab.wait_for(lambda: any(f"plug={victim} off done" in c for c in lab.fence_calls()), 180, 0.5,
                         what=f"{victim} fenced")
        all_running(lab, exclude=(victim,), what=f"every resource Started without {victim}")
        lab.settle(300)
    co.record(f"power cut of {victim} ({counts[victim]} of {len(TOPS)} guests): fenced, all back", t(),
              agent=AGENT, kind="power cut")
    assert s.twice() == {} and instances() == {r: 1 for r in GUESTS}
    moved = [r for r, n in where.items() if n == victim]
    history = co.ops_of(lab, PRIMITIVES)
    for rsc in moved:
        rsc = GROUPS[rsc][1] if rsc in GROUPS else rsc
        starts = [o for o in history[rsc] if o.op == "start" and o.rc == 0]
        assert len(starts) == 2, (rsc, starts)  # its cold start, and once after the fence
    t = co.Timer()
    lab.start_node(victim)
    lab.settle(300)
    co.record(f"{victim} back after its power cut, settled", t())
    assert co.failed_besides(lab, (victim,)) == []
    co.sh(lab, ["crm_resource", "--cleanup"])
    lab.settle(120)

    # -- evacuation of the node holding the most TCG guests
    where = placement(lab)
    vms_on = {}
    for rsc in VMS:
        vms_on.setdefault(where[rsc], []).append(rsc)
    node = max(sorted(vms_on), key=lambda n: len(vms_on[n]))
    leaving = [r for r, n in where.items() if n == node]
    t = co.Timer()
    with Sampler() as s:
        co.sh(lab, ["crm", "node", "standby", node])
        pyralab.wait_for(lambda: not any(n == node for n in placement(lab).values())
                         and co.running(lab, PRIMITIVES), 600, 1, what=f"{node} evacuated")
        lab.settle(300)
    co.record(f"evacuation of {node} ({len(leaving)} guests, {len(vms_on[node])} TCG live)", t(), agent=AGENT,
              kind="evacuation")
    assert s.twice(allow_migrating=True) == {} and instances() == {r: 1 for r in GUESTS}
    history, now = co.ops_of(lab, VMS), placement(lab)
    for rsc in vms_on[node]:
        last = [(o.op, o.node) for o in history[rsc] if o.op in ("start", "stop", "migrate_to", "migrate_from")]
        assert last[-3:-1] == [("migrate_to", node), ("migrate_from", now[rsc])], (rsc, last)
        assert last[-1] == ("stop", node), (rsc, last)
    co.sh(lab, ["crm", "node", "online", node])
    lab.settle(120)

    # -- the whole cluster stopped and started
    fenced = len(lab.fence_calls())
    t = co.Timer()
    pids = {n: pyralab.pidfile_alive(f"{lab.ndir(n)}/pacemakerd.pid") for n in lab.nodes}
    for pid in pids.values():
        pyralab.signal_pid(pid, signal.SIGTERM)
    gone = {n: pyralab.wait_gone(pid, 300) for n, pid in pids.items()}
    stop_s = t()
    assert all(gone.values()), gone
    for n in lab.nodes:
        lab.stop_node(n)
    co.record(f"whole cluster stop ({len(lab.nodes)} nodes at once, every resource stopped)", stop_s, agent=AGENT,
              kind="cluster stop")
    assert instances() == {r: 0 for r in GUESTS}  # the remote nodes' guests, too: stopped, not lost
    t = co.Timer()
    with concurrent.futures.ThreadPoolExecutor(len(lab.nodes)) as pool:
        list(pool.map(lab.start_node, lab.nodes))
    all_running(lab, what="every resource Started after the cluster start")
    lab.settle(300)
    co.record(f"whole cluster start (until all {len(PRIMITIVES)} Started)", t(), agent=AGENT, kind="cluster start")
    assert len(lab.fence_calls()) == fenced, lab.fence_calls()[fenced:]
    assert instances() == {r: 1 for r in GUESTS}
    assert co.failed_besides(lab, ()) == []
    assert len(lab.fence_calls()) - fenced_before == 1  # the power cut, and nothing else
