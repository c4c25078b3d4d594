"""Per-instance state files under ``HA_RSCTMP`` (a tmpfs, cleared at boot): crash memory and identity.

Layout: ``$HA_RSCTMP/pyra/<Agent>/<instance>.state`` (0600, directories 0700), one ``key=value`` per line
(no JSON: its import costs ~5 ms on every monitor). Writes go to a temporary file in the same directory, are
fsynced and renamed over the old file, so a reader never sees a torn record and an agent SIGKILLed mid-write
leaves the previous record. Read-modify-write sequences of one instance are serialised with ``flock`` on a
lock file beside it; different instances never share a file. Nothing is followed through a symlink, and a
directory not owned by us (or writable by others) is refused.

The record a ``start`` writes *before* it acts (DESIGN §5):
- ``phase=started`` + ``id.*`` identity keys: the resource may be running here; a monitor that finds it down
  reports a crash, and a probe or stop that cannot read the config uses the identity to find it.
- ``phase=migrated``: it left for another node (migrate_to succeeded); down here is expected.
- no record: never started here since boot, or cleanly stopped ⇒ "stopped" is the truth.
"""

import os
import stat as _stat
import time

ROOT_NAME = "pyra"
STARTED = "started"
MIGRATED = "migrated"


class StateError(Exception):
    """The state directory is unsafe or unusable."""


def _encode(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _decode(text):
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def safe_component(name):
    """A file-name-safe form of an instance or agent name (clone instances carry ':N')."""
    out = []
    for ch in name:
        if ch.isascii() and (ch.isalnum() or ch in "_-.:@+"):
            out.append(ch)
        else:
            out.append("%%%02X" % (ord(ch) & 0xFF))
    text = "".join(out) or "_"
    if text.startswith("."):
        text = "%2E" + text[1:]
    return text


def ensure_private_dir(path, mode=0o700):
    """Create ``path`` (mode 0700) if needed; refuse a symlink, a non-directory, or a foreign/open directory."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not _stat.S_ISDIR(st.st_mode):
        raise StateError("%s is not a directory (symlink or file)" % path)
    if st.st_uid != os.geteuid():
        raise StateError("%s is owned by uid %d, not us" % (path, st.st_uid))
    if st.st_mode & 0o022:
        raise StateError("%s is writable by others" % path)


def ensure_rsctmp(path):
    """Create HA_RSCTMP itself if missing (Pacemaker normally does). It is shared with other agents, so only
    its existence and type are checked; our own subtree is private."""
    try:
        os.makedirs(path, 0o755)
    except FileExistsError:
        pass
    if os.path.islink(path) and os.lstat(path).st_uid not in (0, os.geteuid()):
        raise StateError("%s is a symlink owned by another user" % path)
    if not os.path.isdir(path):
        raise StateError("%s is not a directory" % path)


class StateFile:
    """One key=value record file, written atomically, read without locks."""

    def __init__(self, directory, name):
        self.directory = directory
        self.path = os.path.join(directory, name)

    def read(self):
        """The record as a dict of strings; {} when absent or unreadable as a record."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError:
            return {}
        try:
            data = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        record = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                key, _, value = line.partition("=")
                record[key] = _decode(value)
        return record

    def write(self, record):
        """Replace the record atomically (temp file, fsync, rename), mode 0600."""
        lines = []
        for key, value in record.items():
            if "=" in key or "\n" in key:
                raise ValueError("bad state key %r" % key)
            lines.append("%s=%s\n" % (key, _encode(value)))
        data = "".join(lines).encode("utf-8")
        self._sweep()
        tmp = "%s.tmp.%d" % (self.path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path)

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._sweep()

    def _sweep(self):
        """Remove temporary files left by a writer that was SIGKILLed between create and rename."""
        prefix = os.path.basename(self.path) + ".tmp."
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            pid = name[len(prefix):]
            if name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid() \
                    and not os.path.exists("/proc/" + pid):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    pass


class _Lock:
    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        import fcntl
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the flock
        self.fd = None
        return False


class InstanceState:
    """The state record of one resource instance of one agent type."""

    def __init__(self, rsctmp, agent_name, instance):
        self.rsctmp = rsctmp
        self.directory = os.path.join(rsctmp, ROOT_NAME, safe_component(agent_name))
        base = safe_component(instance)
        self._file = StateFile(self.directory, base + ".state")
        self._lock_path = os.path.join(self.directory, base + ".lock")
        self._cache = None

    @property
    def path(self):
        return self._file.path

    def _prepare(self):
        ensure_rsctmp(self.rsctmp)
        ensure_private_dir(os.path.join(self.rsctmp, ROOT_NAME))
        ensure_private_dir(self.directory)

    def read(self):
        if self._cache is None:
            self._cache = self._file.read()
        return dict(self._cache)

    def sidecar(self, suffix):
        """Another record file of this instance (``<instance>.<suffix>``) that outlives ``record_stop``: what
        this node learnt once and need not learn again until boot (e.g. that a file passed a slow check)."""
        self._prepare()
        return StateFile(self.directory, os.path.basename(self._file.path)[: -len(".state")] + "." + suffix)

    def locked(self):
        """A context manager serialising read-modify-write of this instance's record."""
        self._prepare()
        return _Lock(self._lock_path)

    def write(self, record):
        self._prepare()
        self._file.write(record)
        self._cache = dict(record)

    def update(self, **values):
        """Merge ``values`` into the record (under the instance lock)."""
        with self.locked():
            self._cache = None
            record = self.read()
            record.update({k: str(v) for k, v in values.items()})
            self.write(record)

    @property
    def phase(self):
        return self.read().get("phase")

    @property
    def has_record(self):
        """True when this node started the resource and has not seen it stop cleanly since."""
        return self.phase == STARTED

    def identity(self):
        """The identity recorded by the last start ({} when none)."""
        return {k[3:]: v for k, v in self.read().items() if k.startswith("id.")}

    def record_start(self, identity, **extra):
        """Write the crash-memory record before acting on a start (or migrate_from)."""
        record = {"phase": STARTED, "since": "%.3f" % time.time(), "pid": str(os.getpid())}
        record.update({"id." + k: str(v) for k, v in identity.items()})
        record.update({k: str(v) for k, v in extra.items()})
        with self.locked():
            self.write(record)

    def record_migrated(self, target=None):
        """The resource left this node by migration: down here is now expected."""
        with self.locked():
            self._cache = None
            record = self.read()
            record["phase"] = MIGRATED
            if target:
                record["target"] = target
            self.write(record)

    def record_stop(self):
        """The resource is cleanly stopped here: forget it."""
        self._prepare()
        with self.locked():
            self._file.remove()
            self._cache = {}
