"""What LVMFilesystem's deeper monitors look at beyond "active and mounted": a direct read of the device
(depth 10), ext4's error count and a read-only remount, a full filesystem and a status file written and read
back (depth 20), missing PVs under partial or degraded activation. Each finding is degraded (190) or a
failure, never a restart for what a restart cannot mend.
"""

import os

from pyra.ocf import codes
from pyra.ocf.errors import Failure


def check(op, vg, lv, dev, directory, mount):
    """The depth 10/20 and filesystem checks of a monitor; the code to return (0 or 190) or Failure."""
    if op.check_level >= 10:
        from pyra.backends import filesystem as fs
        # Under partial/degraded activation the extents of a missing PV map to dm's error target: a read
        # there fails because of the degradation the admin accepted, which is 190, not a failure.
        missing = 0
        if op.params.partial_activation or op.params.degraded_activation:
            missing = missing_pvs(op, vg)
        try:
            fs.read_direct(dev.path)
        except (OSError, fs.FsError) as err:
            why = getattr(err, "strerror", None) or err
            if missing:
                return op.degraded("VG %s is missing %s PV(s); reading %s failed: %s" % (vg, missing, dev.path,
                                                                                       why))
            raise Failure("cannot read %s: %s" % (dev.path, why)) from None
        if missing:
            return op.degraded("VG %s is missing %s PV(s)" % (vg, missing))
    if mount is not None and mount.fstype.startswith("ext"):
        errors = fs_errors(dev, mount.fstype)
        base = op.state.read().get("fs_errors", "")
        if errors is not None and base.isdigit() and errors > int(base):
            return op.degraded("%s: ext4 counted %d new error(s) since start (remounted read-only?)" % (
                directory, errors - int(base)))
    if mount is not None and mount.read_only and "ro" not in (op.params.options or "").split(","):
        return op.degraded("%s is mounted read-only (remounted after errors?)" % directory)
    if op.check_level >= 20 and mount is not None and not mount.read_only:
        from pyra.agents.lvmfilesystem.ownership import node_name
        from pyra.backends import filesystem as fs
        # A full filesystem is working storage an admin must attend to: 190, never a restart (1), which
        # cannot free a byte. Users see "full" before root does (reserved blocks), so ask statvfs too.
        full = fs.full(directory)
        if full:
            return op.degraded("%s is full (%s)" % (directory, full))
        try:
            fs.write_read_status(directory, node_name(op), "%s %s/%s\n" % (op.env.instance, vg, lv))
        except (OSError, fs.FsError) as err:
            if getattr(err, "errno", None) in fs.FULL_ERRNOS:
                return op.degraded("%s is full: status file write failed: %s" % (directory, err.strerror))
            raise Failure("status file write in %s failed: %s" % (
                directory, getattr(err, "strerror", None) or err)) from None
    return codes.SUCCESS


def missing_pvs(op, vg):
    from pyra.backends.lvm import Lvm, LvmError
    try:
        info = Lvm(op.run).vg(vg)
    except LvmError:
        return 0
    try:
        return int((info or {}).get("vg_missing_pv_count") or 0)
    except ValueError:
        return 0


def fs_errors(dev, fstype, sysfs="/sys"):
    """ext2/3/4's count of filesystem errors on ``dev`` (/sys/fs/ext4/<kernel name>/errors_count), else None.

    Kernels with the 6.10 error handling (also Debian's 6.1.1xx) no longer set SB_RDONLY when
    errors=remount-ro fires: they log "Remounting filesystem read-only" but mountinfo and statvfs still say
    rw while every write fails. The error count is what changes; two reads, no spawn."""
    if not fstype.startswith("ext"):
        return None
    try:
        name = os.path.basename(os.readlink("%s/dev/block/%d:%d" % (sysfs, dev.major, dev.minor)))
        with open("%s/fs/ext4/%s/errors_count" % (sysfs, name)) as handle:
            return int(handle.read().strip() or "0")
    except (OSError, ValueError):
        return None
