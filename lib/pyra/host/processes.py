"""Processes on this node: find them by what they hold or run, and signal them in stages.

Everything walks ``/proc`` with ``readlink`` and reads of small proc files: never ``stat()`` of a path on
the mount in question, so a dead (NFS, hung device) mount cannot hang the walk, and unlike ``fuser -m`` on an
unmounted path it cannot select every process on ``/``.
"""

import os

SIGTERM = 15
SIGKILL = 9
SIGCONT = 18


def pids():
    """Every PID in /proc (this process's too)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first), or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
        return data[data.rindex(b")") + 2:].split()
    except (OSError, ValueError):
        return None


def start_time(pid):
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat), or None if gone.

    A (pid, start_time) pair identifies a process even after its PID is recycled."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def alive(pid, started=None):
    """True if ``pid`` exists (and, when ``started`` is given, is the same process) and is not a zombie."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in (b"Z", b"X"):
        return False
    return started is None or (len(fields) > 19 and fields[19] == b"%d" % int(started))


def cmdline(pid):
    """The argv of ``pid`` as a list ([] for kernel threads or when gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return []
    return [part.decode("utf-8", "surrogateescape") for part in data.split(b"\0")[:-1]] if data else []


def children(pid):
    """Direct children of ``pid`` (all its threads'), from /proc/PID/task/TID/children."""
    found = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return found
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid), "rb") as handle:
                found.extend(int(x) for x in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def tree(pid):
    """``pid`` and all its descendants (those that have not moved away by double-forking), parents first."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        if current in out:
            continue
        out.append(current)
        todo.extend(children(current))
    return out


def kill_tree(pid):
    """SIGKILL ``pid`` and its descendants: stop them first (a stopped process cannot fork), collect again,
    then kill them all, so nothing forked in between escapes."""
    first = tree(pid)
    signal_pids(first, 19)  # SIGSTOP
    signal_pids([p for p in tree(pid) if p not in first] + first, SIGKILL)


def find_by_cmdline(predicate):
    """PIDs whose argv satisfies ``predicate(argv)``."""
    found = []
    for pid in pids():
        argv = cmdline(pid)
        if argv and predicate(argv):
            found.append(pid)
    return found


def _under(path, prefix):
    return path == prefix or path.startswith(prefix + "/")


def holders(path, exclude_self=True, namespace=None):
    """PIDs that use anything under ``path``: cwd, root, executable, open files, or memory maps.

    ``path`` should be the mount point (not canonicalised through the mount itself). ``namespace``: only
    processes of that mount namespace (a ``/proc/PID/ns/mnt`` link), whose links name paths as it sees them."""
    prefix = os.path.normpath(path)
    if prefix == "/":
        raise ValueError("refusing to look for holders of /")
    me = os.getpid()
    found = []
    for pid in pids():
        if exclude_self and pid == me:
            continue
        base = "/proc/%d/" % pid
        if namespace is not None and _link(base + "ns/mnt") != namespace:
            continue
        if _holds(base, prefix):
            found.append(pid)
    return found


def _link(path):
    try:
        target = os.readlink(path)
    except OSError:
        return None
    if target.endswith(" (deleted)"):
        target = target[:-10]
    return target


def _holds(base, prefix):
    for name in ("cwd", "root", "exe"):
        target = _link(base + name)
        if target and _under(target, prefix):
            return True
    try:
        fds = os.listdir(base + "fd")
    except OSError:
        fds = ()
    for fd in fds:
        target = _link(base + "fd/" + fd)
        if target and target.startswith("/") and _under(target, prefix):
            return True
    try:
        with open(base + "maps", "rb") as handle:
            for line in handle:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    mapped = parts[5].rstrip(b"\n").decode("utf-8", "surrogateescape")
                    if mapped.endswith(" (deleted)"):
                        mapped = mapped[:-10]
                    if _under(mapped, prefix):
                        return True
    except OSError:
        pass
    return False


def signal_pids(pids, signum):
    """Send ``signum`` to each PID; returns the ones that existed."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, signum)
            sent.append(pid)
        except ProcessLookupError:
            pass
        except PermissionError:
            sent.append(pid)
    return sent


def terminate_in_stages(find, deadline, stages=((SIGTERM, 0.5), (SIGKILL, 0.5)), log=None, poll=0.1):
    """Signal what ``find()`` returns, stage by stage, until it returns nothing or ``deadline`` passes.

    ``stages`` are ``(signal, share)``: each stage gets that share of the time remaining when it starts,
    re-sending its signal to newly found PIDs while it waits. Returns the PIDs still there at the end
    (empty = success).
    """
    remaining = find()
    for index, (signum, share) in enumerate(stages):
        if not remaining:
            return []
        last = index == len(stages) - 1
        stage = deadline if last else deadline.share(share)
        if log:
            log.info("sending signal %d to %d process(es): %s", signum, len(remaining),
                     " ".join(map(str, remaining[:20])))
        signal_pids(remaining, signum)
        if signum != SIGKILL and signum != SIGCONT:
            signal_pids(remaining, SIGCONT)  # a stopped process cannot act on TERM
        while remaining and not stage.expired():
            stage.sleep(poll)
            current = find()
            new = [p for p in current if p not in remaining]
            if new:
                signal_pids(new, signum)
            remaining = current
    return remaining


def wait_gone(pid, deadline, started=None, poll=0.05):
    """Wait until ``pid`` has exited (or is a zombie). True when gone before the deadline."""
    return bool(deadline.wait_for(lambda: not alive(pid, started), interval=poll, max_interval=0.5))
