"""The soak's resources on the lab cluster, their workloads, and what the host can see of them.

    grp-vm = LVMFilesystem fs-vm (VG pyra_soak_vm) -> TransientDomain vm-disk: a TCG guest whose XML, console
             and disk image are on the LV; its writer puts records on that disk (/dev/vda in the guest)
    grp-ct = LVMFilesystem fs-ct (VG pyra_soak_ct) -> ManageVE ct (LXC): rootfs on the LV; its writer puts
             records in /records of the rootfs
    vm-mig = TransientDomain with allow-migrate (XML on the shared storage, no disk): moves live; its writer
             only acknowledges a counter (the instance id must survive a live migration, not a restart)

Acknowledgements go to files under ACKS on the host (visible on every node: the nodes see the host's /):
the guests' second serial port is a file there, the container has ACKS/ct bind-mounted on /acks.
Observers here read /proc and the dm stand-in's state directories only, so they can run every second.
"""
import os
import shutil
import subprocess

from lab import clusterops as co
from lab import dmstandin, pyralab, sanstorage

VG_VM, VG_CT = "pyra_soak_vm", "pyra_soak_ct"
GUEST_DISK, GUEST_MIG, CT = "pyra-soak-vm1", "pyra-soak-vm2", "pyra-ve-soak1"
MNT_VM, MNT_CT = f"{sanstorage.MNT}/{VG_VM}", f"{sanstorage.MNT}/{VG_CT}"
ACKS = f"{pyralab.LAB}/soak-acks"
ACK_FILES = {"vm-disk": f"{ACKS}/vm-disk", "vm-mig": f"{ACKS}/vm-mig", "ct": f"{ACKS}/ct/acks"}
RESOURCES = ("fs-vm", "vm-disk", "fs-ct", "ct", "vm-mig")
GROUPS = {"grp-vm": ("fs-vm", "vm-disk"), "grp-ct": ("fs-ct", "ct"), "vm-mig": ("vm-mig",)}
MIG_XML = f"{pyralab.STORAGE}/{GUEST_MIG}.xml"
OPS = "op monitor interval=10s timeout=30s op start timeout=90s op stop timeout=90s"
CRM = f"""
primitive fs-vm ocf:pyra:LVMFilesystem params vgname={VG_VM} lvname=data directory={MNT_VM} fstype=ext4 \\
    op monitor interval=10s timeout=40s op start timeout=90s op stop timeout=90s
primitive vm-disk ocf:pyra:TransientDomain params config={MNT_VM}/{GUEST_DISK}.xml {OPS}
group grp-vm fs-vm vm-disk
primitive fs-ct ocf:pyra:LVMFilesystem params vgname={VG_CT} lvname=data directory={MNT_CT} fstype=ext4 \\
    op monitor interval=10s timeout=40s op start timeout=90s op stop timeout=90s
primitive ct ocf:pyra:ManageVE params veid={CT} runtime=lxc lxc_path={MNT_CT}/lxc migration=restart {OPS}
group grp-ct fs-ct ct
primitive vm-mig ocf:pyra:TransientDomain params config={pyralab.SHARED}/{GUEST_MIG}.xml {OPS} \\
    op migrate_to timeout=120s op migrate_from timeout=60s meta allow-migrate=true
"""
WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "writer.sh")
CT_INITTAB = "::sysinit:/etc/init.d/rcS\n::respawn:/bin/soak-writer /records /acks/acks\n::shutdown:/bin/true\n"


def _ack_serial(path):
    return f"<serial type='file'><source path='{path}' append='on'/><target port='1'/></serial>"


def setup(lab):
    """LUNs, filesystems, guests and container, acknowledgement files, then the cluster configuration (the
    resources start wherever Pacemaker puts them). Returns the San (for teardown)."""
    from lab.rigs import libvirt_node, lxc_ve
    from lab.rigs.guest import build
    images = build.build()
    lab.enable_libvirt()
    shutil.rmtree(ACKS, ignore_errors=True)
    os.makedirs(f"{ACKS}/ct")
    san = sanstorage.San(lab)

    def fill_vm(path):
        subprocess.run(["truncate", "-s", "16M", f"{path}/disk.img"], check=True)
        with open(f"{path}/{GUEST_DISK}.xml", "w", encoding="utf-8") as f:
            f.write(libvirt_node.guest_xml(GUEST_DISK, images, console=f"{path}/console.log",
                                           disk=f"{path}/disk.img", cmdline="td_writer",
                                           devices=_ack_serial(ACK_FILES["vm-disk"])))

    def fill_ct(path):
        conf = lxc_ve.make_container(CT, lxcpath=f"{path}/lxc")
        root = f"{path}/lxc/{CT}/rootfs"
        shutil.copy(WRITER, f"{root}/bin/soak-writer")
        os.chmod(f"{root}/bin/soak-writer", 0o755)
        with open(f"{root}/etc/inittab", "w", encoding="ascii") as f:
            f.write(CT_INITTAB)
        os.makedirs(f"{root}/acks", exist_ok=True)
        with open(conf, "a", encoding="ascii") as f:
            f.write(f"lxc.mount.entry = {ACKS}/ct acks none bind 0 0\n")

    for vg, fill in ((VG_VM, fill_vm), (VG_CT, fill_ct)):
        san.lun(vg, size="96M")
        san.fill(vg, fill)
    with open(MIG_XML, "w", encoding="utf-8") as f:
        f.write(libvirt_node.guest_xml(GUEST_MIG, images, console=f"{pyralab.SHARED}/{GUEST_MIG}.console",
                                       cmdline="td_writer", devices=_ack_serial(ACK_FILES["vm-mig"])))
    crm_file = f"{pyralab.STORAGE}/soak.crm"
    with open(crm_file, "w", encoding="utf-8") as f:
        f.write(CRM)
    co.crm(lab, "configure", "load", "update", f"{pyralab.SHARED}/soak.crm", timeout=300)
    return san


def teardown(lab, san):
    """Stop and remove the soak's resources and storage (whatever state they are in)."""
    for rsc in GROUPS:
        co.sh(lab, ["crm_resource", "--clear", "-r", rsc], check=False)
    try:
        co.remove(lab, *GROUPS)
    finally:
        if san is not None:
            san.destroy()
        for path in (MNT_VM, MNT_CT):
            shutil.rmtree(path, ignore_errors=True)
        for path in (MIG_XML, f"{pyralab.STORAGE}/soak.crm"):
            if os.path.exists(path):
                os.unlink(path)


# -- observation (host side, cheap) -------------------------------------------------------------------------
def instances():
    """{"vm-disk": [pids], "vm-mig": [pids], "ct": [pids]}: QEMU processes of each guest and LXC monitor
    processes of the container, on the whole machine (every node's namespaces): how many copies really run."""
    found = {"vm-disk": [], "vm-mig": [], "ct": []}
    for pid, cmd in co.cmdlines():
        if f"guest={GUEST_DISK},".encode() in cmd:
            found["vm-disk"].append(pid)
        elif f"guest={GUEST_MIG},".encode() in cmd:
            found["vm-mig"].append(pid)
        elif cmd.startswith(b"[lxc monitor]") and CT.encode() in cmd:
            found["ct"].append(pid)
    return found


def active_lvs(lab):
    """{vg: [nodes where its LV data is active]} from every node's dm stand-in state."""
    out = {VG_VM: [], VG_CT: []}
    for node in lab.nodes:
        state = lab.dm_state(node)
        for vg in out:
            if dmstandin.device(state, vg, "data") is not None:
                out[vg].append(node)
    return out


def read_target(lab, key, count):
    """Bytes of records 1..count of a writer's target, read on the node that has its LV mounted (None when
    no node has it)."""
    mount, path = {"vm-disk": (MNT_VM, f"{MNT_VM}/disk.img"), "ct": (MNT_CT, f"{MNT_CT}/lxc/{CT}/rootfs/records")}[key]
    for node in lab.nodes:
        if not lab.alive(node) or lab.exec(node, ["mountpoint", "-q", mount], timeout=30).returncode != 0:
            continue
        res = subprocess.run(lab.ns_argv(node) + ["dd", f"if={path}", "bs=64", "skip=1", f"count={count}"],
                             capture_output=True, timeout=120, check=False)
        if res.returncode == 0:
            return res.stdout
    return None
