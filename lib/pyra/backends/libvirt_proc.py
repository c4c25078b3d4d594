"""A guest's emulator process, found without libvirtd: for probe/monitor/stop when libvirtd is down or hung.

QEMU started by libvirt carries ``-uuid <domain uuid>`` and ``-name guest=<name>`` on its command line; we scan
/proc for that (about 1 ms per 100 processes) and never touch a process whose command line does not match both.
"""

import os
import signal
import time


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _zombie(pid):
    try:
        with open("/proc/%s/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def emulator_pids(uuid, name=None):
    """PIDs of live processes whose argv contains ``-uuid <uuid>`` (and ``guest=<name>`` when given)."""
    if not uuid:
        return []
    needle = b"\0-uuid\0" + uuid.encode() + b"\0"
    guest = ("guest=" + name).encode() if name else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        cmd = _cmdline(entry)
        if needle not in cmd:
            continue
        if guest is not None and guest not in cmd:
            continue
        if not _zombie(entry):
            found.append(int(entry))
    return found


def kill_emulator(uuid, name, deadline, log=None):
    """SIGTERM the guest's emulator, then SIGKILL after half the remaining time. True when none is left."""
    pids = emulator_pids(uuid, name)
    if not pids:
        return True
    for sig, share in ((signal.SIGTERM, 0.5), (signal.SIGKILL, 1.0)):
        for pid in pids:
            if log:
                log.warning("sending %s to emulator pid %d of %s", sig.name, pid, name)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        until = deadline.share(share)
        while not until.expired():
            pids = emulator_pids(uuid, name)
            if not pids:
                return True
            time.sleep(0.05)
        pids = emulator_pids(uuid, name)
        if not pids:
            return True
    return not emulator_pids(uuid, name)
