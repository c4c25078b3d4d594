"""The rig's shared LVM storage ("SAN LUNs") for the cluster scenarios and the demo.

Owns: one loop-device LUN per volume group, its image on the rig's storage (/var/tmp/pyra-pcmk/storage/
lun-<vg>.img, so it goes with `pyralab down`), every node's /etc/lvm/lvm.conf (a filter that accepts exactly
the LUNs; system_id_source = "uname", so each node's LVM system ID is its hostname, as on a real cluster), and
the admin's preparation of a VG: real LVM metadata (pvcreate, vgcreate without a system ID: unowned until
LVMFilesystem claims it), one linear LV `data`, a real ext4 on it, filled by the caller while mounted on the
host at the very path the nodes will mount it on (MNT/<vg>), so paths written inside stay valid.

Only the kernel step of activation is not real (the host has no device-mapper): both the admin's activation
here and the nodes' (Pacemaker's environment, see pyralab.PCMK_ENV) go through lab/dmstandin. The admin's
runs in a mount namespace of its own (bound on /run/pyra-pcmk/ns/pyra-pcmk-admin.mnt, state in ADMIN_DM);
the filesystem is made and filled from the host, on the loop device that plays the LV.
"""
import os

from lab import dmstandin, pyralab

MNT = f"{pyralab.LAB}/mnt"            # LVMFilesystem's directory for VG <vg> is MNT/<vg>, on every node
ADMIN_LVM = f"{pyralab.LAB}/admin-lvm"  # the admin's (host's) LVM config while preparing; no system ID
ADMIN_DM = f"{pyralab.LAB}/admin-dm"    # the admin's device-mapper state (lab.dmstandin)
ADMIN_NS = f"{pyralab.NSD}/{pyralab.PREFIX}-admin.mnt"
NO_ACT = ["--config", "global/activation=0"]


def lvm_conf(luns, system_id_source):
    accept = "".join(f'"a|^{dev}$|", ' for dev in sorted(luns))
    return ("# written by pyra lab/sanstorage.py: the rig's LUNs only\n"
            f'devices {{\n    global_filter = [ {accept}"r|.*|" ]\n    use_devicesfile = 0\n'
            '    obtain_device_list_from_udev = 0\n    external_device_info_source = "none"\n'
            '    hints = "none"\n    scan_lvs = 0\n}\n'
            f'global {{\n    system_id_source = "{system_id_source}"\n}}\n'
            "activation {\n    udev_sync = 0\n    udev_rules = 0\n    monitoring = 0\n}\n")


class San:
    def __init__(self, lab):
        self.lab = lab
        self.luns = {}  # vg -> loop device

    # ---- LVM as the admin runs it on the host
    def env(self):
        return dict(pyralab.CLEAN_ENV, PATH=f"{pyralab.DM_STANDIN_BIN}:{pyralab.CLEAN_PATH}",
                    LVM_SYSTEM_DIR=ADMIN_LVM, LVM_SUPPRESS_FD_WARNINGS="1")

    def admin_ns(self):
        """argv prefix of the admin's namespace (made on first use; `destroy` and `pyralab down` remove it)."""
        if not os.path.exists(ADMIN_NS):
            return dmstandin.create(ADMIN_NS, ADMIN_DM)
        return dmstandin.enter(ADMIN_NS)

    def lvm(self, *args, activation=False, check=True):
        argv = self.admin_ns() + ["lvm", args[0]] + ([] if activation else NO_ACT) + list(args[1:])
        return pyralab.run(argv, env=self.env(), timeout=120, check=check)

    def write_configs(self):
        os.makedirs(ADMIN_LVM, exist_ok=True)
        with open(f"{ADMIN_LVM}/lvm.conf", "w", encoding="ascii") as f:
            f.write(lvm_conf(self.luns.values(), "none"))
        for n in self.lab.all_nodes:  # remote nodes see the LUNs as well
            path = self.lab.node_path(n, "/etc/lvm/lvm.conf")
            with open(path + ".tmp", "w", encoding="ascii") as f:
                f.write(lvm_conf(self.luns.values(), "uname"))
            os.replace(path + ".tmp", path)

    def lun(self, vg, size="80M"):
        """A new LUN with VG vg on it (no system ID) and an LV `data` of most of it; returns the loop device."""
        img = f"{pyralab.STORAGE}/lun-{vg}.img"
        if os.path.exists(img):
            os.unlink(img)
        pyralab.run(["truncate", "-s", size, img])
        dev = pyralab.run(["losetup", "-f", "--show", img]).stdout.strip()
        self.luns[vg] = dev
        self.write_configs()
        self.lvm("pvcreate", "-y", dev)
        self.lvm("vgcreate", "-y", vg, dev)
        self.lvm("lvcreate", "-y", "-an", "-Zn", "-l", "90%VG", "-n", "data", vg)
        return dev

    def fill(self, vg, fill):
        """Make an ext4 on vg/data, mount it at MNT/vg on the host, call fill(path), unmount, deactivate."""
        self.lvm("lvchange", "-ay", f"{vg}/data", activation=True)
        dev = dmstandin.device(ADMIN_DM, vg, "data")
        pyralab.run(["mkfs.ext4", "-F", "-q", "-L", vg[:16], dev])
        path = f"{MNT}/{vg}"
        os.makedirs(path, exist_ok=True)
        pyralab.run(["mount", dev, path])
        try:
            fill(path)
        finally:
            pyralab.run(["umount", path])
            self.lvm("lvchange", "-an", f"{vg}/data", activation=True)

    def owner(self, vg, node):
        """The VG's LVM system ID as node's LVM sees it."""
        res = self.lab.exec(node, ["lvm", "vgs", "--foreign", "--noheadings", "-o", "vg_systemid", vg], timeout=60)
        return res.stdout.strip()

    def destroy(self):
        """Remove the LUNs (images and loop devices, stand-in devices over them first) and the admin's namespace."""
        for vg, dev in self.luns.items():
            pyralab.detach_lab_loops()
            img = f"{pyralab.STORAGE}/lun-{vg}.img"
            if os.path.exists(img):
                os.unlink(img)
        self.luns.clear()
        self.write_configs()
        dmstandin.destroy(ADMIN_NS)
