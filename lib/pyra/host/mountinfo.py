"""Read the kernel's mount table (``/proc/self/mountinfo``) without spawning anything.

One read per call, parsed into ``Mount`` records with the octal escapes the kernel uses for space, tab,
newline and backslash (``\\040`` ...) decoded. The optional fields before the ``-`` separator are skipped.
A torn read cannot happen within one ``read()`` of a proc file smaller than the buffer, and we read it in
one go; callers needing consistency across several mounts use one snapshot.
"""

import os


class Mount:
    __slots__ = ("mount_id", "parent_id", "major", "minor", "root", "mount_point", "options", "fstype",
                 "source", "super_options")

    def __init__(self, mount_id, parent_id, major, minor, root, mount_point, options, fstype, source,
                 super_options):
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.major = major
        self.minor = minor
        self.root = root
        self.mount_point = mount_point
        self.options = options
        self.fstype = fstype
        self.source = source
        self.super_options = super_options

    @property
    def read_only(self):
        """True when the mount (or its superblock, e.g. after errors=remount-ro) is read-only."""
        return "ro" in self.options.split(",") or "ro" in self.super_options.split(",")

    @property
    def device_number(self):
        return os.makedev(self.major, self.minor)

    def __repr__(self):
        return "Mount(%r on %r type %s)" % (self.source, self.mount_point, self.fstype)


def unescape(field):
    """Decode the kernel's octal escapes (``\\040`` for space etc.)."""
    if "\\" not in field:
        return field
    out, i, n = [], 0, len(field)
    while i < n:
        ch = field[i]
        code = field[i + 1:i + 4]
        if ch == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_line(line):
    """One mountinfo line -> Mount, or None when it does not have the expected shape."""
    fields = line.split(" ")
    try:
        sep = fields.index("-", 6)
        major, minor = fields[2].split(":")
        return Mount(int(fields[0]), int(fields[1]), int(major), int(minor), unescape(fields[3]),
                     unescape(fields[4]), fields[5], unescape(fields[sep + 1]), unescape(fields[sep + 2]),
                     fields[sep + 3] if len(fields) > sep + 3 else "")
    except (ValueError, IndexError):
        return None


def parse(text):
    mounts = []
    for line in text.split("\n"):
        if line:
            mount = parse_line(line)
            if mount is not None:
                mounts.append(mount)
    return mounts


def read(path="/proc/self/mountinfo"):
    """All current mounts, in kernel order (parents before children)."""
    with open(path, "rb", buffering=0) as handle:
        data = b""
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            data += chunk
    return parse(data.decode("utf-8", "surrogateescape"))


def mounts_at(mount_point, mounts=None):
    """The mounts stacked on ``mount_point`` (last = the visible one)."""
    mounts = read() if mounts is None else mounts
    target = os.path.normpath(mount_point)
    return [m for m in mounts if m.mount_point == target]


def submounts(mount_point, mounts=None):
    """Mounts strictly below ``mount_point``, deepest first (the order to unmount them in)."""
    mounts = read() if mounts is None else mounts
    prefix = os.path.normpath(mount_point).rstrip("/") + "/"
    below = [m for m in mounts if m.mount_point.startswith(prefix)]
    return sorted(below, key=lambda m: (m.mount_point.count("/"), m.mount_id), reverse=True)
