"""Build the storage test guest: a stock Debian kernel (with device-mapper, dlm, configfs as modules) and a
busybox initramfs that mounts the HOST's root read-only over 9p with a tmpfs overlay, then runs
the program named by ``pyra_init=`` on the kernel command line as PID 1 (``guest.py`` passes
``guest_init.py`` from this directory). The guest therefore runs the host's own lvm2, python3 and
this source tree, unchanged; the only thing it adds is a kernel with device-mapper.

Cached in /var/cache/pyra-test/lvm/guest (rebuilt when a file is missing or this file is newer). The kernel
.deb comes from ``apt-get download`` (nothing is installed). Needs busybox-static, kmod, dpkg-deb, gzip.
Usable as a script: ``/usr/bin/python3 build.py``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PYRA_LVM_CACHE", "/var/cache/pyra-test/lvm")) / "guest"
MODULES = ("crc32c_generic", "virtio_pci", "virtio_blk", "9pnet_virtio", "9p", "overlay", "dm_mod", "ext4",
           "xfs", "loop", "configfs", "dlm")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/pyra-modules); do modprobe "$m" 2>/dev/null || echo "[pyra-initrd] modprobe $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 hostroot /lower || { echo "[pyra-initrd] no 9p root"; poweroff -f; }
mount -t tmpfs -o size=1g tmpfs /upper
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot || { echo "[pyra-initrd] overlay failed"; poweroff -f; }
K=$(cat /etc/pyra-kver)
mkdir -p /newroot/lib/modules /newroot/pyra-out
cp -a /lib/modules/$K /newroot/lib/modules/
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out /newroot/pyra-out || echo "[pyra-initrd] no out share"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot ${pyra_init:-/bin/sh}
"""


class BuildError(RuntimeError):
    pass


def _run(argv, cwd=None, timeout=600):
    r = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BuildError(f"{' '.join(map(str, argv))} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r.stdout


def _static(path):
    """True when ``path`` is an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and b"ld-linux" not in head


def _apt_update():
    """A fresh machine may have no package lists yet (install-deps only updates when it installs)."""
    _run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"], timeout=600)


def kernel_package():
    try:
        text = _run(["apt-cache", "depends", "linux-image-amd64"])
    except BuildError:
        _apt_update()
        text = _run(["apt-cache", "depends", "linux-image-amd64"])
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split()[1]
    raise BuildError("apt-cache depends linux-image-amd64: no linux-image-* dependency")


def _merge_module_dirs(root):
    """Make ``root/lib/modules`` and ``root/usr/lib/modules`` one directory (a symlink to the real one)."""
    lib, usr = Path(root) / "lib" / "modules", Path(root) / "usr" / "lib" / "modules"
    if usr.is_dir() and not lib.exists():
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.symlink_to("../usr/lib/modules")
    elif lib.is_dir() and not usr.exists():
        usr.parent.mkdir(parents=True, exist_ok=True)
        usr.symlink_to("../../lib/modules")


def images():
    return CACHE / "vmlinuz", CACHE / "initrd.img"


def up_to_date():
    kernel, initrd = images()
    return kernel.exists() and initrd.exists() and initrd.stat().st_mtime >= Path(__file__).stat().st_mtime


def build(force=False):
    if up_to_date() and not force:
        return images()
    if not _static("/bin/busybox"):
        raise BuildError("/bin/busybox missing or not static: apt-get install busybox-static")
    CACHE.mkdir(parents=True, exist_ok=True)
    pkg = kernel_package()
    kver = pkg[len("linux-image-"):]
    debs = sorted(CACHE.glob(pkg + "_*.deb"))
    if not debs:
        try:
            _run(["apt-get", "download", "-q", pkg], cwd=CACHE)
        except BuildError:
            _apt_update()
            _run(["apt-get", "download", "-q", pkg], cwd=CACHE)
        debs = sorted(CACHE.glob(pkg + "_*.deb"))
        if not debs:
            raise BuildError(f"apt-get download {pkg} left no .deb in {CACHE}")
    kroot = CACHE / "kroot"
    if not (kroot / "boot" / ("vmlinuz-" + kver)).exists():
        shutil.rmtree(kroot, ignore_errors=True)
        _run(["dpkg-deb", "-x", debs[-1], kroot])
    # Debian 13's kernel package installs its modules under usr/lib/modules: give the tree both names, so
    # that depmod/modprobe -b find them whichever default this release's kmod has
    _merge_module_dirs(kroot)
    if not (kroot / "lib" / "modules" / kver / "modules.dep").exists():
        _run(["depmod", "-b", kroot, kver])
    root = CACHE / "initrd-root"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "lower", "upper", "newroot", f"lib/modules/{kver}"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    files = set()
    for mod in MODULES:
        out = _run(["modprobe", "-d", kroot, "-S", kver, "--show-depends", mod])
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == "insmod":
                files.add(parts[1])
    for f in files:
        rel = os.path.relpath(os.path.realpath(f), os.path.realpath(kroot))
        if rel.startswith("usr/lib/modules/"):
            rel = rel[len("usr/"):]                    # the initramfs keeps them in /lib/modules
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / rel)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        shutil.copy(kroot / "lib" / "modules" / kver / name, root / "lib" / "modules" / kver / name)
    _merge_module_dirs(root)
    _run(["depmod", "-b", root, kver])
    (root / "etc" / "pyra-modules").write_text(" ".join(MODULES) + "\n")
    (root / "etc" / "pyra-kver").write_text(kver + "\n")
    (root / "init").write_text(INIT)
    os.chmod(root / "init", 0o755)
    kernel, initrd = images()
    shutil.copy(kroot / "boot" / ("vmlinuz-" + kver), kernel)
    listing = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True, timeout=60).stdout
    cpio = subprocess.run(["/bin/busybox", "cpio", "-o", "-H", "newc"], cwd=root, input=listing,
                          capture_output=True, check=True, timeout=120).stdout
    tmp = initrd.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        subprocess.run(["gzip", "-1"], input=cpio, stdout=out, check=True, timeout=120)
    os.replace(tmp, initrd)
    shutil.rmtree(root, ignore_errors=True)
    return images()


if __name__ == "__main__":
    print(build(force="--force" in sys.argv))
