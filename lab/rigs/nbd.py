"""Network disks for the TransientDomain rig: an NBD server in its own network namespace, reachable from both
migration nodes, and a guest that does I/O on its disk on request.

Owns:
  * the storage namespace td-stor: the address ADDR (10.213.3.100/32 on its loopback) reached from td-n1 over
    td-sto1 (10.213.3.65/30 <-> .66) and from td-n2 over td-sto2 (10.213.3.69/30 <-> .70), a route to ADDR on
    each node; the existing td-veth1/td-veth2 link between the nodes is left as it is. Needs netns_up() first.
  * NBDServer: qemu-nbd --persistent --shared in td-stor, serving a raw image file (the host sees every write
    the guests make in that file), stopped by the PID it recorded.
  * disk_images(): the rig's guest with virtio_blk added and one more command on its startup_signal channel:
    host "disk X" -> guest drops its caches, reads the first line of sector 0 (the host writes a seed there),
    writes "pyra-disk X" to sector 8 (fsync), drops its caches and reads it back -> "disk X seed=<s> back=<b>".
    Built as the rig's initrd followed by an overlay archive (a later archive's files replace the earlier ones).
  * disk_xml(): the seed's network disk (<disk type='network'> with <source protocol='nbd'>).
"""
from __future__ import annotations

import glob
import gzip
import os
import subprocess
import tarfile
from pathlib import Path

from lab.rigs import libvirt_node as L
from lab.rigs.guest import build

NS = "td-stor"
ADDR = "10.213.3.100"
# node -> (device on the node, device in td-stor, node address, td-stor address), /30 each
LINKS = {"td-n1": ("td-sto1", "td-sto1p", "10.213.3.65", "10.213.3.66"),
         "td-n2": ("td-sto2", "td-sto2p", "10.213.3.69", "10.213.3.70")}
SECTOR = 512
SEED_SECTOR, DATA_SECTOR = 0, 8
DISK_IMAGES = build.CACHE / "disk-images"


def storage_up() -> None:
    """The storage namespace and its links to td-n1 and td-n2 (which must exist). Idempotent."""
    have = L._run(["ip", "netns", "list"]).stdout.split()
    for ns in LINKS:
        if ns not in have:
            raise L.RigError(f"network namespace {ns} missing: netns_up() first")
    if NS not in have:
        L._run(["ip", "netns", "add", NS])
    L._run(["ip", "-n", NS, "link", "set", "lo", "up"])
    L._run(["ip", "-n", NS, "addr", "replace", f"{ADDR}/32", "dev", "lo"])
    for ns, (dev, peer, addr, peer_addr) in LINKS.items():
        if L._run(["ip", "-n", ns, "link", "show", dev], check=False).returncode != 0:
            L._run(["ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", NS])
        L._run(["ip", "-n", ns, "addr", "replace", f"{addr}/30", "dev", dev])
        L._run(["ip", "-n", NS, "addr", "replace", f"{peer_addr}/30", "dev", peer])
        L._run(["ip", "-n", ns, "link", "set", dev, "up"])
        L._run(["ip", "-n", NS, "link", "set", peer, "up"])
        L._run(["ip", "-n", ns, "route", "replace", f"{ADDR}/32", "via", peer_addr, "dev", dev])


def storage_down() -> None:
    """Delete td-stor (its veth peers in td-n1/td-n2 go with it). Stop the servers first."""
    if NS in L._run(["ip", "netns", "list"], check=False).stdout.split():
        L._run(["ip", "netns", "del", NS], check=False)


class NBDServer:
    """qemu-nbd serving ``image`` as export ``name`` on ADDR:port inside td-stor."""

    def __init__(self, image: Path, name: str, port: int = 10809, shared: int = 8):
        self.image, self.name, self.port, self.shared = Path(image), name, port, shared
        self.pidfile = self.image.with_suffix(".qemu-nbd.pid")
        self.pid: int | None = None

    def start(self) -> "NBDServer":
        self.pidfile.unlink(missing_ok=True)
        # --fork: the parent returns once the server listens (no race with the first client)
        L._run(["nsenter", f"--net=/run/netns/{NS}", "--", "qemu-nbd", "--persistent", f"--shared={self.shared}",
                "--format=raw", f"--bind={ADDR}", f"--port={self.port}", f"--export-name={self.name}",
                f"--pid-file={self.pidfile}", "--fork", str(self.image)], timeout=30)
        self.pid = int(self.pidfile.read_text())
        return self

    def stop(self) -> None:
        if self.pid:
            L.kill_pid(self.pid, 5)
            self.pid = None
        self.pidfile.unlink(missing_ok=True)

    def clients(self) -> set[str]:
        """The addresses of the established client connections (one per QEMU that has the disk open)."""
        r = L._run(["nsenter", f"--net=/run/netns/{NS}", "--", "ss", "-Htn", "state", "established",
                    f"( sport = :{self.port} )"])
        return {line.split()[-1].rsplit(":", 1)[0] for line in r.stdout.splitlines() if line.strip()}

    def write_seed(self, text: str) -> None:
        """Write ``text`` (one line) at sector 0 of the image, server side."""
        write_sector(self.image, SEED_SECTOR, text)

    def data(self) -> str:
        """The first line of sector 8 of the image (what the guest wrote last), server side."""
        return read_sector(self.image, DATA_SECTOR)


def write_sector(image: Path, sector: int, text: str) -> None:
    data = (text + "\n").encode().ljust(SECTOR, b"\0")[:SECTOR]
    fd = os.open(image, os.O_WRONLY)
    try:
        os.pwrite(fd, data, sector * SECTOR)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_sector(image: Path, sector: int) -> str:
    with open(image, "rb") as f:
        f.seek(sector * SECTOR)
        return f.read(SECTOR).replace(b"\0", b"").decode(errors="replace").split("\n", 1)[0]


def make_image(path: Path, mib: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return path


def disk_xml(export: str, port: int = 10809, host: str = ADDR, dev: str = "vda") -> str:
    """The seed's network disk."""
    return (f"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
            f"<source protocol='nbd' name='{export}'><host name='{host}' port='{port}'/></source>"
            f"<target dev='{dev}' bus='virtio'/></disk>")


# --- the disk-capable guest ------------------------------------------------------------------------------------
_PING = 'ping*) echo "pong ${line#ping }" >&3; log "answered $line" ;;'
_DISK_CASE = '\n              disk*) r=$(td_disk "${line#disk }"); echo "$r" >&3; log "answered $line: $r" ;;'
_TD_DISK = r'''
# pyra nbd.py overlay: "disk X" on startup_signal exercises /dev/vda (see lab/rigs/nbd.py)
td_sector() { dd if=/dev/vda bs=512 skip=$1 count=1 2>/dev/null | tr -d '\000' | head -n 1; }
td_disk() {
    [ -b /dev/vda ] || { echo "disk $1 no-vda"; return; }
    sync; echo 3 > /proc/sys/vm/drop_caches
    seed=$(td_sector 0)
    printf 'pyra-disk %s\n' "$1" | dd of=/dev/vda bs=512 seek=8 conv=sync,fsync 2>/dev/null \
        || { echo "disk $1 write-failed"; return; }
    echo 3 > /proc/sys/vm/drop_caches
    echo "disk $1 seed=$seed back=$(td_sector 8)"
}
[ -b /dev/vda ] && log "vda: $(cat /sys/block/vda/size) sectors, seed: $(td_sector 0)"
'''


def _disk_init() -> bytes:
    text = build.INIT.read_text()
    if text.count(_PING) != 1 or text.count('log "up id=$ID"') != 1:
        raise L.RigError(f"{build.INIT} changed: the disk overlay cannot be applied (see lab/rigs/nbd.py)")
    text = text.replace(_PING, _PING + _DISK_CASE).replace('log "up id=$ID"', _TD_DISK + 'log "up id=$ID"')
    return text.encode()


def _kernel_module(kver: str, name: str) -> bytes:
    debs = sorted(glob.glob(str(build.IMAGES / f"linux-image-{kver}_*.deb")))
    if not debs:
        raise L.RigError(f"no linux-image-{kver} .deb in {build.IMAGES}")
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", debs[-1]], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            for m in tar:
                if m.isfile() and os.path.basename(m.name) in (f"{name}.ko", f"{name}.ko.xz"):
                    data = tar.extractfile(m).read()
                    if m.name.endswith(".xz"):
                        import lzma
                        data = lzma.decompress(data)
                    return data
    finally:
        p.stdout.close()
        p.kill()
        p.wait()
    raise L.RigError(f"{name}.ko not in {debs[-1]}")


def disk_images(images: Path) -> Path:
    """The rig's guest images plus virtio_blk and the "disk" command (cached; rebuilt when the base changes)."""
    base_initrd = images / "initrd.gz"
    out = DISK_IMAGES / "initrd.gz"
    newest = max(base_initrd.stat().st_mtime, Path(__file__).stat().st_mtime)
    if out.is_file() and out.stat().st_mtime >= newest and (DISK_IMAGES / "vmlinux").exists():
        return DISK_IMAGES
    DISK_IMAGES.mkdir(parents=True, exist_ok=True)
    kver = (images / "kernel-version").read_text().strip()
    blk = _kernel_module(kver, "virtio_blk")
    have = (images / "modules").read_text().split()
    missing = [d for d in build.module_depends(blk) if d not in have]
    if missing:
        raise L.RigError(f"virtio_blk needs modules the base guest lacks: {missing}")
    overlay = build.cpio_newc([("init", 0o100755, _disk_init()),
                               ("lib/modules/load-order", 0o100644, ("\n".join(have + ["virtio_blk"]) + "\n").encode()),
                               ("lib/modules/virtio_blk.ko", 0o100644, blk)])
    tmp = out.with_suffix(".new")
    tmp.write_bytes(gzip.compress(gzip.decompress(base_initrd.read_bytes()) + overlay, 6))
    os.replace(tmp, out)
    link = DISK_IMAGES / "vmlinux"
    if not link.exists():
        link.symlink_to(images / "vmlinux")
    return DISK_IMAGES
