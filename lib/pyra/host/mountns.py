"""Other mount namespaces on this node that still mount a device: find them, let their unused copies go, and
say who holds the device.

A process that makes its own mount namespace (``unshare -m``, a container, libvirt's namespace per QEMU,
a systemd service with PrivateTmp) starts with a copy of every mount there is. Where the copy does not
receive propagation (``unshare -m`` makes everything private by default; any copy of a host whose ``/`` is
not shared) an unmount here never reaches it: the filesystem stays alive, its device open, and LVM refuses
to deactivate the LV ("contains a filesystem in use") until that process exits.

Namespaces are told apart by the ``/proc/PID/ns/mnt`` link; one process per namespace is enough to read its
mount table (``/proc/PID/mountinfo``). A copy is released with a plain ``umount`` run inside the namespace
(``nsenter --mount``): the kernel refuses it while anything there still uses the copy, so nothing in use is
pulled away; those users are found like local holders (``pyra.host.processes``), by links under the copy's
mount points, in that namespace only.
"""

import os

from pyra.host import mountinfo, processes


class Copy:
    """A foreign mount namespace (seen through process ``pid``) with ``mount_points`` of the device."""
    __slots__ = ("pid", "namespace", "mount_points")

    def __init__(self, pid, namespace, mount_points):
        self.pid = pid
        self.namespace = namespace
        self.mount_points = mount_points

    def describe(self):
        return "pid %d (%s) at %s" % (self.pid, command_name(self.pid), self.mount_points[0])

    def __repr__(self):
        return "Copy(pid=%d, %s, %r)" % (self.pid, self.namespace, self.mount_points)


def namespace_of(pid="self"):
    """The mount namespace identity of ``pid`` (``mnt:[4026531841]``), or None when it is gone or hidden."""
    try:
        return os.readlink("/proc/%s/ns/mnt" % pid)
    except OSError:
        return None


def command_name(pid):
    try:
        with open("/proc/%d/comm" % pid, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip() or "?"
    except OSError:
        return "gone"


def namespaces():
    """{namespace: [pids]} of every process but ours, in PID order (kernel threads share the first)."""
    found = {}
    for pid in processes.pids():
        ns = namespace_of(pid)
        if ns is not None:
            found.setdefault(ns, []).append(pid)
    return found


def copies(device_number, exclude=None):
    """The foreign namespaces that mount ``device_number`` (``os.makedev``), with their mount points deepest
    first. ``exclude``: a namespace to leave out (default: ours)."""
    ours = namespace_of() if exclude is None else exclude
    major, minor = os.major(device_number), os.minor(device_number)
    found = []
    for ns, pids in namespaces().items():
        if ns == ours:
            continue
        for pid in pids:  # the first readable one speaks for the namespace
            try:
                mounts = mountinfo.read("/proc/%d/mountinfo" % pid)
            except OSError:
                continue
            points = [m.mount_point for m in mounts if m.major == major and m.minor == minor]
            if points:
                points.sort(key=lambda p: (p.count("/"), p), reverse=True)
                found.append(Copy(pid, ns, points))
            break
    return found


def holders(copy):
    """PIDs in ``copy``'s namespace that use anything under its mount points."""
    found = []
    for path in copy.mount_points:
        for pid in processes.holders(path, namespace=copy.namespace):
            if pid not in found:
                found.append(pid)
    return found


def unmount(run, copy, deadline):
    """Plain umount of each of the copy's mount points inside its namespace. Returns the reason of the first
    refusal ("" when every umount succeeded); a busy copy stays mounted."""
    for path in copy.mount_points:
        res = run(["nsenter", "--target", str(copy.pid), "--mount", "umount", path],
                  timeout=max(0.5, deadline.remaining()))
        if res.rc != 0:
            return (res.stderr or res.stdout or "rc %s" % res.rc).strip().splitlines()[-1][:100]
    return ""


def device_openers(paths):
    """PIDs with the block device open under one of ``paths`` (its /dev names), e.g. a guest using a raw LV."""
    names = set(paths)
    found = []
    me = os.getpid()
    for pid in processes.pids():
        if pid == me:
            continue
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target in names:
                found.append(pid)
                break
    return found
