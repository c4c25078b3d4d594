"""The kernel's view of an LV: is `VG/LV` active on this node, and which block device is it.

This is the monitor's depth-0 question, answered without any LVM scan or process spawn: one stat of
``/dev/mapper/<dm name>`` and one read of ``/sys/dev/block/M:m/dm/name`` (which proves the node really is a
device-mapper device of that name, not a stale file).
"""

import os
import stat


def dm_name(vg, lv):
    """The device-mapper name LVM gives VG/LV (dashes doubled, joined by a dash)."""
    return vg.replace("-", "--") + "-" + lv.replace("-", "--")


class Device:
    __slots__ = ("path", "rdev")

    def __init__(self, path, rdev):
        self.path = path
        self.rdev = rdev

    @property
    def major(self):
        return os.major(self.rdev)

    @property
    def minor(self):
        return os.minor(self.rdev)

    def __repr__(self):
        return "Device(%s %d:%d)" % (self.path, self.major, self.minor)


def _block(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def active_device(vg, lv):
    """The block device of VG/LV if it is active on this node, else None."""
    name = dm_name(vg, lv)
    path = "/dev/mapper/" + name
    rdev = _block(path)
    if rdev is None:
        return None
    try:
        with open("/sys/dev/block/%d:%d/dm/name" % (os.major(rdev), os.minor(rdev))) as handle:
            if handle.read().strip() != name:
                return None
    except FileNotFoundError:
        return None  # a stale node: no dm device behind it
    except OSError:
        pass  # sysfs unreadable: trust the block device node
    return Device(path, rdev)


def suspended(device):
    """True when the dm device is suspended (I/O queued: a table reload hung, or a failed PV)."""
    try:
        with open("/sys/dev/block/%d:%d/dm/suspended" % (device.major, device.minor)) as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False
