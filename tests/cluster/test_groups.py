"""Scenario 3: the seeds' layouts under the 3-node cluster, each a VM or container on its own shared LV.

    grp-td  = LVMFilesystem(pyra_pcmk_td) -> TransientDomain   (guest's XML, disk image and console log on the LV)
    grp-ve  = LVMFilesystem(pyra_pcmk_ve) -> ManageVE lxc      (container's config and rootfs on the LV)
    fs-vs, vs1 = LVMFilesystem(pyra_pcmk_vs), VServer           (config dir and root on the LV), tied by explicit
                                                               `order` + `colocation` constraints instead of a group
Storage is real LVM on loop-device LUNs (sanstorage.py): each VG is claimed by the node that activates it
(system ID = that node's hostname), real ext4, only device-mapper's kernel step is the stand-in. All three are
placed on one node, then moved together to another one (stopped top-down, VG handed over, started
bottom-up); that node is SIGKILLed: it is fenced (its mounts and LV devices go with it), and every
layout comes up on a survivor in order (VG taken over, LV activated + fsck'd + mounted, then the guest,
container, vserver started from what is on it; a file written before the power cut is still there). When
the node rejoins, its probes say stopped and nothing runs twice.
"""
import os
import shutil
import subprocess

import pytest

from lab import REPO
from lab import clusterops as co
from lab import pyralab
from lab import sanstorage

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.lxc,
              pytest.mark.slow]

for _agent in ("LVMFilesystem", "TransientDomain", "ManageVE", "VServer"):
    if not os.path.exists(os.path.join(REPO, "agents", _agent)):
        pytest.skip(f"agents/{_agent} does not exist yet", allow_module_level=True)

from lab.rigs import libvirt_node, lxc_ve  # noqa: E402
from lab.rigs.guest import build  # noqa: E402

VSERVER = os.path.join(REPO, "tests", "fakes", "vserver", "vserver")
GUEST, CT, VS = "pyra-pcmk-g2", "pyra-ve-pcmk-c2", "pyra-vs-pcmk1"
VGS = {"td": "pyra_pcmk_td", "ve": "pyra_pcmk_ve", "vs": "pyra_pcmk_vs"}
MNT = {k: f"{sanstorage.MNT}/{vg}" for k, vg in VGS.items()}
LAYOUTS = {"td": ("fs-td", "vm2"), "ve": ("fs-ve", "ct2"), "vs": ("fs-vs", "vs1")}
CRM = f"""
primitive fs-td ocf:pyra:LVMFilesystem params vgname={VGS['td']} lvname=data directory={MNT['td']} fstype=ext4 \\
    op monitor interval=10s timeout=40s op start timeout=90s op stop timeout=90s
primitive vm2 ocf:pyra:TransientDomain params config={MNT['td']}/{GUEST}.xml \\
    op monitor interval=10s timeout=30s op start timeout=90s op stop timeout=90s
group grp-td fs-td vm2
primitive fs-ve ocf:pyra:LVMFilesystem params vgname={VGS['ve']} lvname=data directory={MNT['ve']} fstype=ext4 \\
    op monitor interval=10s timeout=40s op start timeout=90s op stop timeout=90s
primitive ct2 ocf:pyra:ManageVE params veid={CT} runtime=lxc lxc_path={MNT['ve']}/lxc migration=restart \\
    op monitor interval=10s timeout=30s op start timeout=90s op stop timeout=90s
group grp-ve fs-ve ct2
primitive fs-vs ocf:pyra:LVMFilesystem params vgname={VGS['vs']} lvname=data directory={MNT['vs']} fstype=ext4 \\
    op monitor interval=10s timeout=40s op start timeout=90s op stop timeout=90s
primitive vs1 ocf:pyra:VServer params name={VS} confdir={MNT['vs']}/vservers vserver_cmd={VSERVER} \\
    op monitor interval=10s timeout=30s op start timeout=90s op stop timeout=90s
order o-vs Mandatory: fs-vs vs1
colocation c-vs inf: vs1 fs-vs
"""
CONSTRAINTS = ("o-vs", "c-vs", "loc-td", "loc-ve", "loc-vs")


def on_node(lab, node, argv):
    return lab.exec(node, argv, timeout=60)


def mounted_on(lab, node, path):
    return on_node(lab, node, ["mountpoint", "-q", path]).returncode == 0


def ct_state(lab, node):
    res = on_node(lab, node, ["lxc-info", "-P", f"{MNT['ve']}/lxc", "-n", CT, "-sH"])
    return res.stdout.strip() if res.returncode == 0 else f"rc={res.returncode}"


def vs_running(lab, node):
    res = lab.exec(node, [VSERVER, f"{MNT['vs']}/vservers/{VS}", "running"], timeout=60)
    return res.returncode == 0


@pytest.fixture(scope="module")
def san(lab):
    images = build.build()
    lab.enable_libvirt()
    san = sanstorage.San(lab)

    def fill_td(path):
        subprocess.run(["truncate", "-s", "4M", f"{path}/disk.img"], check=True)
        with open(f"{path}/{GUEST}.xml", "w", encoding="utf-8") as f:
            f.write(libvirt_node.guest_xml(GUEST, images, console=f"{path}/console.log", disk=f"{path}/disk.img"))

    def fill_ve(path):
        lxc_ve.make_container(CT, lxcpath=f"{path}/lxc")

    def fill_vs(path):
        env = dict(pyralab.CLEAN_ENV, PYRA_VS_CONFDIR=f"{path}/vservers")
        subprocess.run([VSERVER, VS, "build"], check=True, env=env, capture_output=True, timeout=120)

    try:
        for key, fill in (("td", fill_td), ("ve", fill_ve), ("vs", fill_vs)):
            san.lun(VGS[key])
            san.fill(VGS[key], fill)
        yield san
    finally:
        san.destroy()
        for path in MNT.values():
            shutil.rmtree(path, ignore_errors=True)


def placed(lab, exclude=()):
    return {k: tuple(lab.where(r, viewer=lab.viewer(exclude)) for r in rs) for k, rs in LAYOUTS.items()}


def all_on(node_pred):
    def check(where):
        return all(len(w) == 1 and node_pred(w[0]) for ws in where.values() for w in ws) and \
            all(ws[0] == ws[1] for ws in where.values())
    return check


def first_ops(lab, rsc, node, op="start", after=0):
    return [o for o in co.ops(lab, rsc)[after:] if o.op == op and o.node == node]


def test_layouts_start_in_order_and_fail_over_as_a_whole(cluster, san):
    home = "n3"
    crm_file = f"{pyralab.STORAGE}/groups.crm"
    with open(crm_file, "w", encoding="utf-8") as f:
        f.write(CRM + "".join(f"location loc-{k} {'grp-' + k if k != 'vs' else 'fs-vs'} 50: {home}\n"
                              for k in LAYOUTS))
    try:
        t = co.Timer()
        co.crm(cluster, "configure", "load", "update", f"{pyralab.SHARED}/groups.crm", timeout=300)
        where = {}
        pyralab.wait_for(lambda: all_on(lambda n: n == home)(where.update(placed(cluster)) or where), 240, 1,
                         what="all three layouts running on " + home)
        cluster.settle(180)
        co.record("3 layouts started together (LV claim+fsck+mount, then guest/container/vserver)", t(),
                  agent="groups", kind="start")
        for rsc, label in (("fs-td", "LVMFilesystem"), ("vs1", "VServer")):
            co.record(f"{label} start, by Pacemaker's log", co.exec_seconds(cluster, rsc, "start", home),
                      agent=label, kind="start (agent)")
        assert mounted_on(cluster, home, MNT["td"]) and mounted_on(cluster, home, MNT["ve"])
        assert co.guest_answers(cluster, home, GUEST, "group-start")
        assert ct_state(cluster, home) == "RUNNING" and vs_running(cluster, home)
        for vg in VGS.values():
            assert san.owner(vg, home) == home
        for n in cluster.nodes:
            if n != home:
                assert not any(mounted_on(cluster, n, p) for p in MNT.values())
        for key in LAYOUTS:  # order: the LV is mounted before what lives on it starts
            fs, top = LAYOUTS[key]
            assert first_ops(cluster, fs, home)[0].stamp <= first_ops(cluster, top, home)[0].stamp
        for path in MNT.values():  # the admin's data, written on the node that has the LV
            cluster.exec(home, ["sh", "-c", f"echo before-powercut > {path}/marker && sync"], check=True)
        assert len(co.qemu_of(GUEST)) == 1

        # an admin moves all three: each stops top-down (guest, then LV unmounted, deactivated, VG released)
        # and starts bottom-up on the target, which now owns the VGs
        old, home = home, next(n for n in cluster.nodes if n != home)
        before = {r: len(co.ops(cluster, r)) for rs in LAYOUTS.values() for r in rs}
        t = co.Timer()
        for r in ("grp-td", "grp-ve", "fs-vs"):
            co.sh(cluster, ["crm_resource", "--move", "-r", r, "-N", home])
        moved = {}

        def arrived():
            for key in LAYOUTS:
                if key not in moved and co.running(cluster, LAYOUTS[key], (old,)):
                    moved[key] = t()
            return len(moved) == len(LAYOUTS)
        pyralab.wait_for(arrived, 240, 0.5, what=f"all three layouts moved to {home}")
        cluster.settle(180)
        for r in ("grp-td", "grp-ve", "fs-vs"):
            co.sh(cluster, ["crm_resource", "--clear", "-r", r])
        assert all_on(lambda n: n == home)(placed(cluster))
        for key, label in (("td", "TransientDomain"), ("ve", "ManageVE (LXC)"), ("vs", "VServer")):
            co.record(f"LVMFilesystem -> {label} moved by crm_resource --move (stop, hand over, start)",
                      moved[key], agent=f"LVMFilesystem -> {label}", kind="move")
            fs, top = LAYOUTS[key]
            assert san.owner(VGS[key], home) == home
            stops = {r: [o for o in co.ops(cluster, r)[before[r]:] if o.op == "stop" and o.node == old]
                     for r in (fs, top)}
            assert len(stops[fs]) == 1 and len(stops[top]) == 1 and stops[fs][0].rc == 0, stops
            assert stops[top][0].stamp <= stops[fs][0].stamp, stops
        assert not any(mounted_on(cluster, old, p) for p in MNT.values())
        assert co.guest_answers(cluster, home, GUEST, "group-moved")

        # power cut of the node running all three
        counts = {r: len(co.ops(cluster, r)) for rs in LAYOUTS.values() for r in rs}
        t = co.Timer()
        cluster.kill_node(home)
        up_after = {}

        def survived():
            for key in LAYOUTS:
                if key not in up_after and co.running(cluster, LAYOUTS[key], (home,)):
                    up_after[key] = t()
            return len(up_after) == len(LAYOUTS)
        pyralab.wait_for(survived, 240, 0.5, what="all three layouts running on survivors")
        where = placed(cluster, (home,))
        viewer = cluster.viewer((home,))
        cluster.settle(180, viewer=viewer)
        co.record("3 layouts failed over together after SIGKILL of their node (fence, VG takeover, fsck, "
                  "mount, start)", t(), agent="groups", kind="failover")
        assert any(f"plug={home} off done" in c for c in cluster.fence_calls())
        for key, label in (("td", "TransientDomain"), ("ve", "ManageVE (LXC)"), ("vs", "VServer")):
            co.record(f"LVMFilesystem -> {label} failover after SIGKILL of its node (all three at once)",
                      up_after[key], agent=f"LVMFilesystem -> {label}", kind="failover")
        where = placed(cluster, (home,))
        for key, (fs, top) in LAYOUTS.items():
            node = where[key][0][0]
            assert san.owner(VGS[key], node) == node
            assert mounted_on(cluster, node, MNT[key])
            out = cluster.exec(node, ["cat", f"{MNT[key]}/marker"], check=True).stdout
            assert out.strip() == "before-powercut", (key, out)
            fs_start = first_ops(cluster, fs, node, after=counts[fs])
            top_start = first_ops(cluster, top, node, after=counts[top])
            assert len(fs_start) == 1 and len(top_start) == 1 and fs_start[0].rc == 0 and top_start[0].rc == 0
            assert fs_start[0].stamp <= top_start[0].stamp, (fs_start, top_start)
            for label, rsc in (("LVMFilesystem", fs), ({"td": "TransientDomain", "ve": "ManageVE (LXC)",
                                                        "vs": "VServer"}[key], top)):
                co.record(f"{label} start after failover, by Pacemaker's log", co.exec_seconds(
                    cluster, rsc, "start", node), agent=label, kind="start after failover (agent)")
        assert co.guest_answers(cluster, where["td"][0][0], GUEST, "group-failover")
        console = cluster.exec(where["td"][0][0], ["cat", f"{MNT['td']}/console.log"], check=True).stdout
        assert console, "the guest's console log on the LV is empty"
        assert ct_state(cluster, where["ve"][0][0]) == "RUNNING"
        assert vs_running(cluster, where["vs"][0][0])
        assert len(co.qemu_of(GUEST)) == 1

        # the node comes back: its probes say stopped, nothing moves back or runs twice
        cluster.start_node(home)
        cluster.settle(180)
        assert placed(cluster) == where
        for rs in LAYOUTS.values():
            for r in rs:
                after = co.ops(cluster, r)[counts[r]:]
                probes = [o for o in after if o.op == "probe" and o.node == home]
                assert probes and probes[-1].rc == 7, (r, after)
                assert len([o for o in after if o.op == "start"]) == 1, (r, after)
        assert not any(mounted_on(cluster, home, p) for p in MNT.values())
        assert len(co.qemu_of(GUEST)) == 1
        assert co.failed_actions(cluster) == []
    finally:
        for r in ("grp-td", "grp-ve", "vs1", "fs-vs"):  # stop first: the order constraint orders the stops
            co.sh(cluster, ["crm_resource", "-r", r, "--meta", "-p", "target-role", "-v", "Stopped"], check=False)
        cluster.settle(180)
        for c in CONSTRAINTS:
            co.sh(cluster, ["crm", "configure", "delete", "--force", c], check=False)
        co.remove(cluster, "grp-td", "grp-ve", "vs1", "fs-vs")
        os.unlink(crm_file)
    assert co.qemu_of(GUEST) == []
    for n in cluster.nodes:
        assert not any(mounted_on(cluster, n, p) for p in MNT.values()), n
