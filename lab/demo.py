#!/usr/bin/python3
"""`make demo`: a 3-node Pacemaker cluster in namespaces on this machine, running pyra agents.

Owns the demo's story (what is configured, shown and broken); the cluster is lab/pyralab.py, the shared
LVM storage lab/sanstorage.py. Steps: bring the cluster up (per-node libvirtd, fencing by really killing a
node's processes), make two LUNs with real LVM metadata and ext4, configure with crmsh as an admin would:
  grp-vm = LVMFilesystem -> TransientDomain   (the guest's XML, disk image and console log on the LV)
  grp-ct = LVMFilesystem -> ManageVE (LXC)    (the container's config and rootfs on the LV)
  vm2    = TransientDomain on the shared directory, allow-migrate=true
show crm_mon as they start, live-migrate vm2, cut the power of the node running grp-vm and show the failover
(fenced, VG taken over, fsck, mount, guest started), boot that node again, then print how to look around and
how to tear everything down (`make demo-down`).
"""
import os
import sys
import time

if __name__ == "__main__":  # run as a script: the package lab is beside this file
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab import clusterops as co  # noqa: E402
from lab import pyralab  # noqa: E402
from lab import sanstorage  # noqa: E402
from lab.rigs import libvirt_node, lxc_ve  # noqa: E402
from lab.rigs.guest import build  # noqa: E402

LAB = os.path.abspath(os.path.join(os.path.dirname(__file__), "pyralab.py"))
VM1, VM2, CT = "pyra-pcmk-vm1", "pyra-pcmk-vm2", "pyra-ve-pcmk-demo"
VG_VM, VG_CT = "pyra_demo_vm", "pyra_demo_ct"
OPS = "op monitor interval=10s timeout=40s op start timeout=90s op stop timeout=90s"
CRM = f"""primitive fs-vm ocf:pyra:LVMFilesystem params vgname={VG_VM} lvname=data \\
    directory={sanstorage.MNT}/{VG_VM} fstype=ext4 {OPS}
primitive vm1 ocf:pyra:TransientDomain params config={sanstorage.MNT}/{VG_VM}/{VM1}.xml {OPS}
group grp-vm fs-vm vm1
primitive fs-ct ocf:pyra:LVMFilesystem params vgname={VG_CT} lvname=data \\
    directory={sanstorage.MNT}/{VG_CT} fstype=ext4 {OPS}
primitive ct1 ocf:pyra:ManageVE params veid={CT} runtime=lxc lxc_path={sanstorage.MNT}/{VG_CT}/lxc \\
    migration=restart {OPS}
group grp-ct fs-ct ct1
primitive vm2 ocf:pyra:TransientDomain params config={pyralab.SHARED}/{VM2}.xml {OPS} \\
    meta allow-migrate=true
"""


def say(text):
    sys.stdout.write(f"\n\033[1m==> {text}\033[0m\n")
    sys.stdout.flush()


def show(cmd_text, res):
    sys.stdout.write(f"$ {cmd_text}\n{res.stdout}{res.stderr}")
    sys.stdout.flush()


def admin(lab, argv, node="n1", check=True):
    res = co.sh(lab, argv, node=node, check=check)
    show(f"pyralab exec {node} {' '.join(argv)}", res)
    return res


def crm_mon(lab, node=None):
    res = co.sh(lab, ["crm_mon", "-1", "-r"], node=node or lab.viewer(), check=False)
    body = res.stdout.split("Full List of Resources:", 1)[-1]
    sys.stdout.write("  crm_mon:" + "".join("\n   " + ln.replace("* ", "", 1).rstrip() for ln in body.splitlines()
                                        if ln.strip()) + "\n")
    sys.stdout.flush()


def watch(lab, until, timeout, exclude=(), every=4.0):
    """Print crm_mon's resource list every few seconds until until() is true."""
    t = co.Timer()
    last = -every
    while True:
        done = until()
        if done or t() - last >= every:
            sys.stdout.write(f"  [{t():5.1f}s]")
            crm_mon(lab, lab.viewer(exclude))
            last = t()
        if done:
            return t()
        if t() > timeout:
            raise pyralab.LabError(f"not done after {timeout}s")
        time.sleep(1)


def prepare_storage(lab, images):
    san = sanstorage.San(lab)

    def fill_vm(path):
        pyralab.run(["truncate", "-s", "4M", f"{path}/disk.img"])
        with open(f"{path}/{VM1}.xml", "w", encoding="utf-8") as f:
            f.write(libvirt_node.guest_xml(VM1, images, console=f"{path}/console.log", disk=f"{path}/disk.img"))

    for vg, fill in ((VG_VM, fill_vm), (VG_CT, lambda path: lxc_ve.make_container(CT, lxcpath=f"{path}/lxc"))):
        dev = san.lun(vg)
        san.fill(vg, fill)
        sys.stdout.write(f"  LUN {dev} ({pyralab.STORAGE}/lun-{vg}.img): VG {vg}, LV data, ext4\n")
    with open(f"{pyralab.STORAGE}/{VM2}.xml", "w", encoding="utf-8") as f:
        f.write(libvirt_node.guest_xml(VM2, images, console=f"{pyralab.SHARED}/{VM2}.console"))


def main():
    lab = pyralab.Lab()
    if lab.nodes:
        say("Removing the previous demo cluster first")
        lab.down()
    say("Bringing up a 3-node Pacemaker 2.1 + Corosync 3 cluster in namespaces (n1 n2 n3)")
    t = co.Timer()
    lab.up(3)
    lab.enable_libvirt()
    sys.stdout.write(f"cluster up in {t():.1f}s; a libvirtd per node; fencing: stonith:fence_pyralab kills "
                     "every process of a fenced node\n")

    say("Shared storage: LUNs with real LVM (each node's LVM system ID is its hostname) and the guest image")
    images = build.build()
    prepare_storage(lab, images)

    say("A typo in a parameter name is refused by crmsh, a wrong value by the agent's validate-all")
    admin(lab, ["crm", "configure", "primitive", "oops", "ocf:pyra:TransientDomain", "params",
                "config=/x.xml", "hypervisr=qemu:///system"], check=False)
    admin(lab, ["crm_resource", "--validate", "--class", "ocf", "--provider", "pyra", "--agent", "ManageVE",
                "--option", "veid=-oops"], check=False)

    say("Configuring with crmsh (crm configure load update demo.crm)")
    with open(f"{pyralab.STORAGE}/demo.crm", "w", encoding="utf-8") as f:
        f.write(CRM)
    sys.stdout.write(CRM)
    admin(lab, ["crm", "configure", "load", "update", f"{pyralab.SHARED}/demo.crm"])
    say("crm_mon while they start")
    secs = watch(lab, lambda: co.running(lab, ("fs-vm", "vm1", "fs-ct", "ct1", "vm2")), 240)
    lab.settle(120)
    sys.stdout.write(f"all started after {secs:.1f}s\n")

    src = lab.where("vm2")[0]
    dst = next(n for n in lab.nodes if n != src)
    say(f"Live migration: crm_resource --move -r vm2 -N {dst} (migrate_to on {src}, migrate_from on {dst})")
    t = co.Timer()
    admin(lab, ["crm_resource", "--move", "-r", "vm2", "-N", dst])
    co.wait_where(lab, "vm2", lambda w: w == [dst], 120)
    lab.settle(120)
    sys.stdout.write(f"vm2 runs on {dst} after {t():.1f}s, without a restart; what Pacemaker ran:\n")
    for op in co.ops(lab, "vm2"):
        if op.op not in ("monitor", "probe"):
            sys.stdout.write(f"   {op}\n")
    admin(lab, ["crm_resource", "--clear", "-r", "vm2"])

    victim = lab.where("vm1")[0]
    survivor = next(n for n in lab.nodes if n != victim)
    say(f"Power cut: SIGKILL every process of {victim}, which runs grp-vm (LV {VG_VM}/data + guest {VM1})")
    t = co.Timer()
    lab.kill_node(victim)
    watch(lab, lambda: co.running(lab, ("fs-vm", "vm1", "fs-ct", "ct1", "vm2"), (victim,)), 240, exclude=(victim,))
    sys.stdout.write(f"{victim} was fenced and everything runs again {t():.1f}s after the power cut\n")
    for line in lab.fence_calls():
        if "off done" in line or "released" in line:
            sys.stdout.write(f"   fence_pyralab: {line.split(' ', 2)[2]}\n")
    now = lab.where("vm1", viewer=survivor)[0]
    admin(lab, ["lvm", "vgs", "-o", "vg_name,vg_systemid,lv_count", VG_VM], node=now)
    admin(lab, ["findmnt", f"{sanstorage.MNT}/{VG_VM}"], node=now)
    admin(lab, ["virsh", "list"], node=now)

    say(f"Booting {victim} again")
    lab.start_node(victim)
    lab.settle(120)
    crm_mon(lab)

    say("The operator's view: pyra list (one cibadmin -Q and one crm_mon, every pyra resource)")
    admin(lab, ["pyra", "list"], node=now, check=False)
    sys.stdout.write(f"  a guest's serial console from any node (leave with ^]):\n"
                     f"  /usr/bin/python3 {LAB} exec n1 pyra vm vm2 console\n"
                     f"  also: pyra vm vm2 where|info|reset|ctrlaltdel|sysrq KEY, pyra vm vm2 migrate, "
                     f"pyra node {now} evacuate\n")

    say("Look around")
    sys.stdout.write(
        f"  /usr/bin/python3 {LAB} exec n1 crm_mon          live cluster status (Ctrl-C to leave)\n"
        f"  /usr/bin/python3 {LAB} exec n2 crm configure show\n"
        f"  /usr/bin/python3 {LAB} exec n3 pcs status --full\n"
        f"  /usr/bin/python3 {LAB} exec {now} virsh list; ... exec {now} lvm vgs -o+vg_systemid\n"
        f"  /usr/bin/python3 {LAB} kill n2 | start n2 | freeze n2 | thaw n2 | partition n2 | heal\n"
        f"  logs: {pyralab.LAB}/nodes/<node>/var-log-pacemaker/pacemaker.log, .../var-log-corosync/corosync.log\n"
        f"  fencing log: {pyralab.LAB}/fence/calls.log\n"
        "Tear it all down (namespaces, daemons, guests, LUNs, files): make demo-down\n")


if __name__ == "__main__":
    try:
        main()
    except (pyralab.LabError, AssertionError) as e:
        sys.stderr.write(f"demo failed: {e}\n")
        sys.exit(1)
