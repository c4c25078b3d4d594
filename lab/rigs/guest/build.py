"""Build the TransientDomain test guest: an ELF vmlinux and a busybox initramfs, from Debian packages.

Owns: downloading the current Debian kernel package (``apt-get download``, nothing installed), extracting
its bzImage, the uncompressed ELF ``vmlinux`` (QEMU boots it through the PVH entry point, which skips the
in-guest decompression: about 3.5 s to ``/init`` under software emulation instead of about 8 s), the kernel
modules the guest needs (virtio-serial for the startup_signal channel, ACPI button + evdev for the power
button) in dependency order, and a newc cpio written here (no cpio binary needed).

Cached in ``/var/cache/pyra-test/td/images`` (``PYRA_TD_CACHE`` overrides); rebuilt when a file is missing
or when ``init`` is newer than the initramfs. Usable as a script: ``/usr/bin/python3 build.py [--force]``.
"""
from __future__ import annotations

import glob
import gzip
import lzma
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT = HERE / "init"
WRITER = HERE.parent.parent / "soak" / "writer.sh"  # the soak's workload (lab/soak), run by td_writer
CACHE = Path(os.environ.get("PYRA_TD_CACHE", "/var/cache/pyra-test/td"))
IMAGES = CACHE / "images"
MODULES = ("virtio_pci", "virtio_console", "virtio_blk", "button", "evdev")
BUSYBOX = "/bin/busybox"


class BuildError(RuntimeError):
    pass


def _run(argv, cwd=None, timeout=300):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r.stdout


def kernel_package() -> str:
    out = _run(["apt-cache", "depends", "linux-image-amd64"])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split()[1]
    raise BuildError("apt-cache depends linux-image-amd64: no linux-image-* dependency")


def unzstd(data: bytes) -> bytes:
    """Decompress the first zstd frame of ``data`` (Python before 3.14 has no zstd module: the zstd tool).
    Trailing bytes after the frame (a bzImage's size field) make zstd complain, not lose the output."""
    r = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, timeout=120)
    return r.stdout


def extract_elf(bzimage: bytes) -> bytes:
    """Find the compressed payload inside a bzImage and return the ELF vmlinux (xz and gzip: Debian 12's
    kernel; zstd: Debian 13's)."""
    for magic, dec in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
                       (b"\x1f\x8b\x08", lambda b: zlib.decompressobj(31).decompress(b)),
                       (b"\x28\xb5\x2f\xfd", unzstd)):
        off = bzimage.find(magic)
        while off >= 0:
            try:
                out = dec(bzimage[off:])
            except (lzma.LZMAError, zlib.error):
                out = b""
            if out[:4] == b"\x7fELF":
                return out
            off = bzimage.find(magic, off + 1)
    raise BuildError("no xz/gzip/zstd ELF payload found in the bzImage")


def modules_dir(root: Path, kver: str) -> Path:
    """The kernel package's module tree: lib/modules (Debian 12) or usr/lib/modules (Debian 13)."""
    for base in ("usr/lib/modules", "lib/modules"):
        if (root / base / kver).is_dir():
            return root / base / kver
    raise BuildError(f"no lib/modules/{kver} or usr/lib/modules/{kver} in the kernel package")


def read_module(p: Path) -> bytes:
    """A module's ELF bytes, whatever compression the kernel package used (.ko, .ko.xz, .ko.zst)."""
    data = p.read_bytes()
    if p.name.endswith(".xz"):
        return lzma.decompress(data)
    if p.name.endswith(".zst"):
        return unzstd(data)
    return data


def module_depends(ko: bytes) -> list[str]:
    """The depends= entry of a module's .modinfo strings (no modinfo binary needed)."""
    i = ko.find(b"\0depends=")
    if i < 0:
        return []
    j = ko.index(b"\0", i + 1)
    val = ko[i + 9:j].decode()
    return [d for d in val.split(",") if d]


def cpio_newc(entries) -> bytes:
    """entries: (name, mode, data-or-None-for-dir-or-symlink-target). Returns a newc archive."""
    out = bytearray()
    ino = 1
    for name, mode, data in list(entries) + [("TRAILER!!!", 0, b"")]:
        data = data or b""
        nm = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nm), 0))
        ino += 1
        out += hdr.encode() + nm
        out += b"\0" * ((4 - len(out) % 4) % 4)
        out += data
        out += b"\0" * ((4 - len(out) % 4) % 4)
    return bytes(out)


def up_to_date() -> bool:
    need = [IMAGES / "vmlinux", IMAGES / "initrd.gz"]
    if not all(p.is_file() and p.stat().st_size > 0 for p in need):
        return False
    return (IMAGES / "initrd.gz").stat().st_mtime >= max(INIT.stat().st_mtime, WRITER.stat().st_mtime,
                                                          Path(__file__).stat().st_mtime)


def build(force: bool = False) -> Path:
    """Ensure the images exist; return the images directory."""
    if not force and up_to_date():
        return IMAGES
    if not (os.path.isfile(BUSYBOX) and b"ld-linux" not in Path(BUSYBOX).read_bytes()[:4096 * 4]):
        raise BuildError("/bin/busybox missing or not static: apt-get install busybox-static")
    IMAGES.mkdir(parents=True, exist_ok=True)
    pkg = kernel_package()
    debs = sorted(glob.glob(str(IMAGES / f"{pkg}_*.deb")))
    if not debs:
        _run(["apt-get", "download", "-q", pkg], cwd=IMAGES, timeout=600)
        debs = sorted(glob.glob(str(IMAGES / f"{pkg}_*.deb")))
        if not debs:
            raise BuildError(f"apt-get download {pkg} left no .deb in {IMAGES}")
    kver = pkg[len("linux-image-"):]
    with tempfile.TemporaryDirectory(prefix="td-guest.", dir="/var/tmp") as w:
        x = Path(w) / "x"
        _run(["dpkg-deb", "-x", debs[-1], str(x)])
        vmlinux = extract_elf((x / "boot" / f"vmlinuz-{kver}").read_bytes())
        mods = modules_dir(x, kver) / "kernel"
        found = {}
        for p in mods.rglob("*.ko*"):
            found[p.name.split(".ko")[0]] = p
        order: list[str] = []
        blobs: dict[str, bytes] = {}

        def add(name: str) -> None:
            if name in blobs:
                return
            p = found.get(name) or found.get(name.replace("_", "-"))
            if p is None:
                return  # built in
            data = read_module(p)
            blobs[name] = data
            for dep in module_depends(data):
                add(dep)
            order.append(name)

        for m in MODULES:
            add(m)
        entries = [("bin", 0o40755, None), ("dev", 0o40755, None), ("proc", 0o40755, None),
                   ("sys", 0o40755, None), ("tmp", 0o41777, None), ("lib", 0o40755, None),
                   ("lib/modules", 0o40755, None),
                   ("bin/busybox", 0o100755, Path(BUSYBOX).read_bytes()),
                   ("init", 0o100755, INIT.read_bytes()),
                   ("bin/soak-writer", 0o100755, WRITER.read_bytes()),
                   ("lib/modules/load-order", 0o100644, ("\n".join(order) + "\n").encode())]
        entries += [(f"lib/modules/{n}.ko", 0o100644, blobs[n]) for n in order]
        initrd = gzip.compress(cpio_newc(entries), 6)
    for name, data in (("vmlinux", vmlinux), ("initrd.gz", initrd)):
        tmp = IMAGES / (name + ".new")
        tmp.write_bytes(data)
        os.replace(tmp, IMAGES / name)
    (IMAGES / "kernel-version").write_text(kver + "\n")
    (IMAGES / "modules").write_text(" ".join(order) + "\n")
    return IMAGES


if __name__ == "__main__":
    d = build(force="--force" in sys.argv)
    for p in sorted(d.iterdir()):
        print(p.stat().st_size, p)
