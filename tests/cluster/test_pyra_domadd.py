"""Issue 12: `pyra create-domxml` -> `pyra domadd` in the 3-node lab, run on a node as an admin would.

The guest's only disk is an LV of a shared VG (a SAN LUN of lab/sanstorage.py), named by its device path
/dev/mapper/<vg>-data; `pyra domadd --disk-group auto` puts it under an ocf:pyra:LVMFilesystem (raw: no
directory) in the group g-<guest>, before the guest. With placement-strategy=utilization and only n3 having room
for the guest's memory, the cluster starts the group on n3: the LV is activated there (the VG claimed through
n3's LVM system ID; the device is the lab's dm stand-in, a loop device shown at /dev/mapper/<vg>-data inside the
node) and the guest boots with it as its virtio disk and answers its startup_signal handshake. domadd's
refusals (the id exists; the name of a non-pyra resource) leave the CIB's configuration byte-for-byte the same,
and --dry-run changes nothing. The guest boots its kernel directly (the lab's TCG image, --kernel/--initrd)
and its NIC is on a Linux bridge this test makes in every node's network namespace.
"""
import os
import xml.etree.ElementTree as ET

import pytest

from lab import REPO
from lab import clusterops as co
from lab import pyralab
from lab import sanstorage

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.slow]

for _path in ("agents/TransientDomain", "agents/LVMFilesystem", "lib/pyra/cli/domadd.py"):
    if not os.path.exists(os.path.join(REPO, _path)):
        pytest.skip(f"{_path} does not exist yet", allow_module_level=True)

from lab.rigs.guest import build  # noqa: E402

GUEST = "pyra-dx1"
GROUP = "g-" + GUEST
DISK_RSC = GUEST + "-vda"
VG = "pyra_pcmk_dx"
BRIDGE = "pyradx0"
XML = f"{pyralab.SHARED}/{GUEST}.xml"          # as the nodes see it (the host's pyralab.STORAGE)
CONSOLE = f"{pyralab.SHARED}/{GUEST}.console"
CAPACITY = {"n1": 64, "n2": 64, "n3": 512}      # MiB: only n3 has room for the guest's 128 MiB
PYRA = "/usr/sbin/pyra"                          # installed by `make install` (the lab fixture), like the agents


@pytest.fixture(scope="module")
def storage(lab):
    images = build.build()
    lab.enable_libvirt()
    san = sanstorage.San(lab)
    try:
        san.lun(VG)
        for n in lab.nodes:
            lab.exec(n, ["ip", "link", "add", BRIDGE, "type", "bridge"], check=False)
            lab.exec(n, ["ip", "link", "set", BRIDGE, "up"], check=True)
        yield images, san
    finally:
        for n in lab.nodes:
            if lab.alive(n):
                lab.exec(n, ["ip", "link", "del", BRIDGE], check=False)
        san.destroy()
        for ext in ("xml", "console"):
            try:
                os.unlink(f"{pyralab.STORAGE}/{GUEST}.{ext}")
            except OSError:
                pass


def pyra(lab, node, *args):
    return lab.exec(node, [PYRA] + list(args), timeout=120)


def configuration(lab):
    """The CIB's <configuration> as text (what a failed domadd must leave untouched)."""
    root = ET.fromstring(co.sh(lab, ["cibadmin", "-Q"]).stdout)
    return ET.tostring(root.find("configuration"), encoding="unicode"), root.get("epoch")


def test_create_domxml_then_domadd_places_the_guest_by_utilization_with_its_lv(cluster, storage):
    images, san = storage
    try:
        for node, mib in CAPACITY.items():
            for name, value in (("memory", mib), ("cpu", 4)):
                co.sh(cluster, ["crm_attribute", "-N", node, "-z", "-n", name, "-v", str(value)])
        co.sh(cluster, ["crm_attribute", "-t", "crm_config", "-n", "placement-strategy", "-v", "utilization"])

        t = co.Timer()
        res = pyra(cluster, "n1", "create-domxml", "--name", GUEST, "--cpus", "1", "--mem", "128m",
                   "--disk", f"/dev/mapper/{VG}-data", "--bridge", BRIDGE, "--type", "qemu", "--machine", "pc",
                   "--kernel", f"{images}/vmlinux", "--initrd", f"{images}/initrd.gz",
                   "--cmdline", "console=ttyS0 quiet panic=-1", "--console-log", CONSOLE, "--graphics", "none",
                   "--output", XML)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        # the same name gives the same XML on another node
        again = pyra(cluster, "n2", "create-domxml", "--name", GUEST, "--cpus", "1", "--mem", "128m",
                     "--disk", f"/dev/mapper/{VG}-data", "--bridge", BRIDGE, "--type", "qemu", "--machine", "pc",
                     "--kernel", f"{images}/vmlinux", "--initrd", f"{images}/initrd.gz",
                     "--cmdline", "console=ttyS0 quiet panic=-1", "--console-log", CONSOLE, "--graphics", "none")
        with open(f"{pyralab.STORAGE}/{GUEST}.xml", encoding="utf-8") as f:
            assert again.stdout == f.read()

        before = configuration(cluster)
        dry = pyra(cluster, "n1", "domadd", XML, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        fragment = ET.fromstring(dry.stdout)
        assert fragment.tag == "group" and fragment.get("id") == GROUP
        assert configuration(cluster) == before  # --dry-run changed nothing

        # a non-pyra resource of that name (the lab's fence device): exit 4, nothing changed
        refused = pyra(cluster, "n1", "domadd", XML, "--id", "fence-lab")
        assert refused.returncode == 4 and "not a pyra resource" in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1 and configuration(cluster) == before

        added = pyra(cluster, "n1", "domadd", XML)
        assert added.returncode == 0, added.stderr
        co.record("pyra create-domxml + domadd (on n1)", t(), agent="pyra", kind="domadd")

        # the group as domadd made it: the LV's LVMFilesystem first, then the guest
        root = ET.fromstring(co.sh(cluster, ["cibadmin", "-Q", "-o", "resources"]).stdout)
        group = next(g for g in root.iter("group") if g.get("id") == GROUP)
        members = [(p.get("id"), p.get("type")) for p in group.findall("primitive")]
        assert members == [(DISK_RSC, "LVMFilesystem"), (GUEST, "TransientDomain")], members
        disk_params = {nv.get("name"): nv.get("value") for nv in group.find("primitive").find("instance_attributes")}
        assert disk_params == {"vgname": VG, "lvname": "data"}
        guest = group.findall("primitive")[1]
        assert {nv.get("name"): nv.get("value") for nv in guest.find("utilization")} == {"cpu": "1", "memory": "128"}
        assert {nv.get("name"): nv.get("value") for nv in guest.find("meta_attributes")} == {"allow-migrate": "true"}

        # placed by utilization: only n3 has the memory
        where = co.wait_where(cluster, GUEST, lambda w: len(w) == 1, 240, what=f"{GUEST} running")
        pyralab.wait_for(lambda: co.running(cluster, (DISK_RSC, GUEST)), 240, 1, what="group started")
        co.record("domadd'ed group started (LV claimed and activated, guest ready)", t(), agent="pyra",
                  kind="domadd to running")
        assert where == ["n3"], cluster.mon()
        assert cluster.where(DISK_RSC) == ["n3"]
        mon = co.sh(cluster, ["crm_mon", "-1", "-r"]).stdout
        assert any(GUEST in line and "Started n3" in line for line in mon.splitlines()), mon
        assert san.owner(VG, "n3") == "n3"  # the VG claimed by the node running the guest
        # the guest runs with the LV as its disk and answers its handshake channel
        blk = cluster.exec("n3", ["virsh", "domblklist", GUEST], check=True).stdout
        assert f"/dev/mapper/{VG}-data" in blk, blk
        assert co.guest_answers(cluster, "n3", GUEST, "domadd")
        assert len(co.qemu_of(GUEST)) == 1

        # adding it again: refused, one line, nothing changed
        now = configuration(cluster)
        dup = pyra(cluster, "n2", "domadd", XML)
        assert dup.returncode == 1 and "already exists" in dup.stderr, dup.stderr
        assert len(dup.stderr.splitlines()) == 1 and configuration(cluster) == now
        assert co.failed_actions(cluster) == []
    finally:
        co.remove(cluster, GUEST, DISK_RSC, GROUP)
        co.sh(cluster, ["crm_attribute", "-t", "crm_config", "-n", "placement-strategy", "-D"], check=False)
        for node in CAPACITY:
            for name in ("memory", "cpu"):
                co.sh(cluster, ["crm_attribute", "-N", node, "-z", "-n", name, "-D"], check=False)
    assert co.qemu_of(GUEST) == []
