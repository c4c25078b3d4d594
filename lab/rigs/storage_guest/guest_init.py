#!/usr/bin/python3
"""PID 1 of the storage test guest (after the initramfs has switched to the host's root over 9p + overlay).

Mounts the pseudo filesystems, sets the hostname, runs the job written by the host in
``/pyra-out/<node>/job.json`` (``{"argv": [...], "timeout": seconds}``) with its output in ``driver.log``,
reaps every orphan (daemons double-fork to us), records the job's exit status in ``rc``, and powers off.
The node name comes from ``pyra_node=`` on the kernel command line (the kernel hands it to us as env).
Runs under the host's /usr/bin/python3; nothing here writes outside the guest but the out share.
"""
import ctypes
import json
import os
import subprocess
import sys
import time

OUT = "/pyra-out"


def mount(source, target, fstype, options=""):
    os.makedirs(target, exist_ok=True)
    argv = ["mount", "-t", fstype] + (["-o", options] if options else []) + [source, target]
    subprocess.run(argv, timeout=30, check=False)


def fresh_tmp():
    """A private tmpfs on /tmp, keeping the checkout we run from visible when it lives under /tmp (a CI clone
    in /tmp/...): it is bind-mounted aside first and back onto its own path afterwards."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    inside = repo == "/tmp" or repo.startswith("/tmp/")
    if inside:
        os.makedirs("/run/pyra-src", exist_ok=True)
        subprocess.run(["mount", "--bind", repo, "/run/pyra-src"], timeout=30, check=False)
    mount("tmpfs", "/tmp", "tmpfs")
    if inside:
        os.makedirs(repo, exist_ok=True)
        subprocess.run(["mount", "--bind", "/run/pyra-src", repo], timeout=30, check=False)


def poweroff():
    os.sync()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.reboot(0x4321FEDC)  # LINUX_REBOOT_CMD_POWER_OFF
    time.sleep(5)
    sys.exit(1)  # PID 1 exits: panic=-1 + qemu -no-reboot ends the guest anyway


def main():
    os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    mount("proc", "/proc", "proc")
    mount("sysfs", "/sys", "sysfs")
    mount("tmpfs", "/run", "tmpfs", "mode=755")
    for d in ("/run/lock", "/run/lvm", "/dev/pts", "/dev/shm"):
        os.makedirs(d, exist_ok=True)
    mount("devpts", "/dev/pts", "devpts")
    mount("tmpfs", "/dev/shm", "tmpfs")
    fresh_tmp()
    mount("configfs", "/sys/kernel/config", "configfs")
    node = os.environ.get("pyra_node", "guest")
    with open("/proc/sys/kernel/hostname", "w") as handle:
        handle.write(node)
    here = os.path.join(OUT, node)
    with open(os.path.join(here, "job.json")) as handle:
        job = json.load(handle)
    print("[pyra-guest %s] %.1fs userland up, running %s" % (node, time.monotonic(), job["argv"]), flush=True)
    log = open(os.path.join(here, "driver.log"), "wb", buffering=0)
    env = dict(os.environ, PYRA_GUEST_NODE=node, PYRA_GUEST_OUT=here, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.Popen(job["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + float(job.get("timeout", 600))
    status = None
    while status is None:
        try:
            pid, wstatus = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == proc.pid:
            status = os.waitstatus_to_exitcode(wstatus)
        elif pid == 0:
            if time.monotonic() > deadline:
                proc.kill()
                print("[pyra-guest %s] job timed out" % node, flush=True)
                deadline = float("inf")
            time.sleep(0.2)
    with open(os.path.join(here, "rc"), "w") as handle:
        handle.write("%s\n" % status)
    print("[pyra-guest %s] %.1fs job rc=%s, powering off" % (node, time.monotonic(), status), flush=True)
    poweroff()


if __name__ == "__main__":
    try:
        main()
    finally:
        poweroff()
