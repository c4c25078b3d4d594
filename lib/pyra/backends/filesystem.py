"""A block-device filesystem on this node: check it, mount it, probe it with direct I/O, unmount it.

Mount state comes from ``pyra.host.mountinfo`` (one read, no spawn); holders of a busy mount from the
``pyra.host.processes`` /proc walk, signalled in stages inside the operation deadline; copies of the mount
left in other mount namespaces from ``pyra.host.mountns``. Never `fuser -m`
(without -M it selects every process on `/` when the path is not a mount point) and never `umount -l`
(the superblock stays alive with its holders, and the LV cannot be deactivated: storage lab §1).
"""

import os

JOURNALLED = ("ext3", "ext4", "xfs", "btrfs", "jfs", "reiserfs", "gfs2", "ocfs2", "nilfs2", "f2fs")
STATUS_DIR = ".pyra_status"
BLOCK = 4096


class FsError(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def first_line(text, limit=100):
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return ""


# ---- fsck ------------------------------------------------------------------------------------------------
def needs_fsck(policy, fstype):
    """run_fsck policy: force = always; no = never; auto = only filesystems without a journal (fs.sh)."""
    if policy == "force":
        return True
    if policy == "no":
        return False
    return fstype not in JOURNALLED


def fsck(run, device, fstype, timeout=None, force=False):
    """Check (and repair what is safe to repair) ``device``; FsError with the tool's summary on failure.

    ext2/3/4: ``fsck -t <type> -p`` (``-f`` when ``force``: check even a filesystem marked clean) (rc 0 clean, 1 corrected: both fine; >1 fails). xfs: ``xfs_repair``
    (`fsck.xfs` is a no-op); a dirty log (rc 2) must be replayed by mounting, which we leave to the admin.
    """
    if fstype == "xfs":
        res = run(["xfs_repair", device], timeout=timeout)
        ok = res.rc == 0
        tool = "xfs_repair"
    else:
        argv = ["fsck"] + (["-t", fstype] if fstype else []) + ["-p"] + (["-f"] if force else []) + [device]
        res = run(argv, timeout=timeout)
        ok = res.rc in (0, 1)
        tool = "fsck"
    if res.timed_out:
        raise FsError("%s of %s did not finish in time" % (tool, device))
    if not ok:
        summary = first_line(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "") or \
            first_line(res.stderr)
        raise FsError("%s %s failed (rc %s): %s" % (tool, device, res.rc, summary))
    return res


# ---- mount -----------------------------------------------------------------------------------------------
def mount(run, device, directory, fstype=None, options=None, timeout=None):
    argv = ["mount"]
    if fstype:
        argv += ["-t", fstype]
    if options:
        argv += ["-o", options]
    argv += [device, directory]
    res = run(argv, timeout=timeout)
    if res.rc != 0:
        raise FsError("mount %s on %s failed: %s" % (device, directory, first_line(res.stderr) or res.rc))
    return res


def unmount_once(run, directory, timeout=None):
    """One plain umount; returns (ok, message)."""
    res = run(["umount", directory], timeout=timeout)
    return res.rc == 0, first_line(res.stderr) or ("rc %s" % res.rc)


def unmount(run, directory, deadline, mounts_reader, force="true", stages=None, log=None):
    """Unmount ``directory`` and everything below it (deepest first), freeing each from its holders.

    ``force``: "true"/"safe" signal the holders found by the /proc walk, in ``stages`` ((signal, share of the
    remaining time), ...); the walk only reads links, so a dead mount cannot hang it. "false" never signals
    and fails when busy. ``mounts_reader`` is ``pyra.host.mountinfo``. Raises FsError with the reason.
    """
    from pyra.host import processes
    stages = stages or ((processes.SIGTERM, 0.5), (processes.SIGKILL, 1.0))
    for path in [m.mount_point for m in mounts_reader.submounts(directory)] + [directory]:
        attempts = 0
        while mounts_reader.mounts_at(path):
            ok, msg = unmount_once(run, path, timeout=max(1.0, deadline.remaining()))
            if ok or not mounts_reader.mounts_at(path):
                continue
            if force == "false":
                raise FsError("%s is busy (%s) and force_unmount=false" % (path, msg))
            if deadline.expired() or attempts >= 3:
                raise FsError("cannot unmount %s: %s" % (path, msg))
            attempts += 1
            left = processes.terminate_in_stages(lambda: processes.holders(path), deadline.share(0.9),
                                                 stages, log=log)
            if left:
                raise FsError("%s is busy: %d process(es) survived %s (e.g. pid %d)" % (
                    path, len(left), "+".join(_signame(s) for s, _ in stages), left[0]))


def release_copies(run, device_number, deadline, force="true", stages=None, log=None):
    """Let go of the copies of this filesystem's mounts that other mount namespaces on the node still hold
    (``pyra.host.mountns``): each is unmounted there with a plain umount; one still in use there is freed
    from its users like a local mount (``force``, ``stages`` as in ``unmount``), in that namespace only.
    Raises FsError naming the namespace (one of its processes) that keeps a copy."""
    from pyra.host import mountns, processes
    stages = stages or ((processes.SIGTERM, 0.5), (processes.SIGKILL, 1.0))
    for copy in mountns.copies(device_number):
        where = copy.describe()
        refusal = mountns.unmount(run, copy, deadline)
        if refusal and _still_there(mountns, device_number, copy):
            if force == "false":
                raise FsError("still mounted by the mount namespace of %s (%s), force_unmount=false"
                              % (where, refusal))
            left = processes.terminate_in_stages(lambda: mountns.holders(copy), deadline.share(0.9), stages,
                                                 log=log)
            if left:
                raise FsError("still mounted by the mount namespace of %s: %d process(es) there survived %s"
                              % (where, len(left), "+".join(_signame(s) for s, _ in stages)))
            refusal = mountns.unmount(run, copy, deadline)
            if refusal and _still_there(mountns, device_number, copy):
                raise FsError("still mounted by the mount namespace of %s: %s" % (where, refusal))
        if log:  # worth a warning: while such a copy is busy, the LV cannot be deactivated
            log.warning("released the copy of the mount held by the mount namespace of %s (a namespace made "
                        "with private propagation while it was mounted)", where)


def _still_there(mountns, device_number, copy):
    return any(c.namespace == copy.namespace for c in mountns.copies(device_number))


def _signame(signum):
    return {15: "TERM", 9: "KILL", 1: "HUP", 2: "INT", 3: "QUIT", 10: "USR1", 12: "USR2"}.get(signum, str(signum))


# ---- direct I/O probes (monitor depth 10 and 20) --------------------------------------------------------
def _aligned(size=BLOCK):
    import mmap
    return mmap.mmap(-1, size)


def read_direct(path, size=BLOCK):
    """Read ``size`` bytes of ``path`` with O_DIRECT (bypassing the page cache): proves the device answers."""
    buf = _aligned(size)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
    try:
        got = os.readv(fd, [buf])
    finally:
        os.close(fd)
        buf.close()
    if got <= 0:
        raise FsError("direct read of %s returned %d bytes" % (path, got))
    return got


FULL_ERRNOS = (28, 122)  # ENOSPC, EDQUOT


def full(directory):
    """Why ``directory``'s filesystem counts as full for its users ("" when it is not): no block or no inode
    left for unprivileged writers."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return ""
    if st.f_blocks and st.f_bavail == 0:
        return "no free blocks for users"
    if st.f_files and st.f_favail == 0:
        return "no free inodes for users"
    return ""


def write_read_status(directory, name, payload):
    """Write a status file in ``directory``/.pyra_status with O_DIRECT|O_SYNC and read it back."""
    status = os.path.join(directory, STATUS_DIR)
    try:
        os.mkdir(status, 0o700)
    except FileExistsError:
        pass
    path = os.path.join(status, name)
    data = payload.encode()[:BLOCK - 1].ljust(BLOCK, b"\n")
    buf = _aligned()
    buf.write(data)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0) | os.O_SYNC
    try:
        fd = os.open(path, flags, 0o600)
        try:
            if os.pwritev(fd, [buf], 0) != BLOCK:
                raise FsError("short direct write to %s" % path)
        finally:
            os.close(fd)
        back = _aligned()
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
            try:
                os.preadv(fd, [back], 0)
            finally:
                os.close(fd)
            if back[:BLOCK] != data:
                raise FsError("status file %s read back different data" % path)
        finally:
            back.close()
    finally:
        buf.close()
