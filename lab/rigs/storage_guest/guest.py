"""Boot throw-away storage test guests (QEMU, TCG software emulation) and collect what they wrote.

A guest is the kernel + initramfs of ``build.py`` with the HOST's root read-only over 9p (tmpfs overlay), its
own raw disk images as virtio disks (``/dev/vda``...), and one writable 9p share, ``/pyra-out``, which is the
host directory ``out``. Several guests may share ``out`` (each writes below ``out/<node>/``; the rest of it
is theirs to use for barrier files) and may attach the same image ``share-rw`` (a shared SAN disk).
``guest_init.py`` runs ``out/<node>/job.json``'s argv and powers off; the job's rc lands in ``out/<node>/rc``.

Nothing runs on the host but qemu-system-x86_64, started by PID and stopped by PID. Work files live under
/var/tmp/pyra-lvg (prefix ``lvg``); qemu processes carry ``-name pyra-lvg-<node>``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from . import build

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
WORK = Path("/var/tmp/pyra-lvg")
QEMU = "qemu-system-x86_64"


class GuestError(RuntimeError):
    pass


def image(path, size):
    """A fresh sparse raw image (size like '800M')."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    subprocess.run(["truncate", "-s", size, str(path)], check=True, timeout=30)
    return path


class Guest:
    """One guest: ``start()`` boots it running ``argv`` (inside the guest), ``wait()`` until it powers off."""

    def __init__(self, node, out, argv, disks=(), shared=(), mem=1024, smp=1, timeout=600):
        self.node = node
        self.out = Path(out)
        self.dir = self.out / node
        self.argv = list(argv)
        self.disks = [Path(d) for d in disks]
        self.shared = [Path(d) for d in shared]
        self.mem, self.smp, self.timeout = mem, smp, timeout
        self.proc: subprocess.Popen | None = None
        self.started = self.ended = None

    def qemu_argv(self, kernel, initrd):
        argv = [QEMU, "-name", "pyra-lvg-" + self.node, "-accel", "tcg,thread=multi", "-cpu", "max",
                "-m", str(self.mem), "-smp", str(self.smp), "-nographic", "-nic", "none", "-no-reboot",
                "-serial", "mon:stdio", "-monitor", "none", "-kernel", str(kernel), "-initrd", str(initrd),
                "-append", "console=ttyS0 panic=-1 loglevel=4 pyra_init=%s pyra_node=%s"
                           % (HERE / "guest_init.py", self.node),
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
                "-virtfs", "local,path=%s,mount_tag=out,security_model=none" % self.out]
        for disk in self.disks:
            argv += ["-drive", "file=%s,format=raw,if=virtio,cache=none,aio=threads" % disk]
        for index, disk in enumerate(self.shared):
            argv += ["-drive", "file=%s,format=raw,if=none,id=shared%d,cache=none,file.locking=off" % (disk, index),
                     "-device", "virtio-blk-pci,drive=shared%d,share-rw=on,serial=pyra-shared%d" % (index, index)]
        return argv

    def start(self):
        kernel, initrd = build.build()
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in ("rc", "driver.log", "console.log"):
            (self.dir / stale).unlink(missing_ok=True)
        (self.dir / "job.json").write_text(json.dumps({"argv": self.argv, "timeout": self.timeout}))
        console = open(self.dir / "console.log", "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.qemu_argv(kernel, initrd), stdin=subprocess.DEVNULL, stdout=console,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        console.close()
        (self.dir / "qemu.pid").write_text("%d\n" % self.proc.pid)
        return self

    def poll(self):
        if self.proc is None or self.proc.poll() is None:
            return None
        if self.ended is None:
            self.ended = time.monotonic()
        return self.proc.returncode

    def wait(self, timeout=None):
        """Wait for the guest to power off (killing qemu after ``timeout``, default the job's + 120 s)."""
        limit = time.monotonic() + (timeout if timeout is not None else self.timeout + 120)
        while self.poll() is None:
            if time.monotonic() > limit:
                self.kill()
                raise GuestError("guest %s did not power off in time; see %s" % (self.node, self.dir))
            time.sleep(0.5)
        return self.rc()

    def rc(self):
        """The job's exit status as written by the guest (None: it never finished)."""
        try:
            text = (self.dir / "rc").read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None

    def wall(self):
        return (self.ended or time.monotonic()) - self.started if self.started else 0.0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.ended = time.monotonic()

    def tail(self, name="driver.log", lines=40):
        try:
            return "\n".join((self.dir / name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no %s)" % name


def results(out, node):
    """{scenario: result dict} written by the in-guest driver under out/<node>/results/."""
    found = {}
    for path in sorted((Path(out) / node / "results").glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            found[path.stem] = {"error": "unreadable result %s: %s" % (path, err), "checks": []}
    return found
