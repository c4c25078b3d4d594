"""Namespaces kept on files (``unshare --mount=FILE``) on kernels that refuse some of those binds at random.

The kernel refuses to bind a mount namespace onto a mount of a namespace that is not older than it (a
reference loop), judging "older" by namespace id. Since Linux 6.18 those ids come from per-CPU batches, so a
namespace made on one CPU can get a smaller id than one made earlier on another: from inside a mount
namespace of its own (the Debian 13 root of `make test`, a container) ``unshare --mount=FILE`` then fails now
and then with "mount /proc/N/ns/mnt on FILE failed: Invalid argument", before running its command. Ids made on
the same CPU do grow, so the lab retries the same unshare pinned to each CPU in turn (the command itself gets
every CPU back), after unbinding whatever the failed attempt had bound. Used by every rig that keeps a node's
namespaces on files: the cluster lab, the dm stand-in, the libvirt and LXC rigs.
"""

import os
import subprocess

_BOUND = ("--mount=", "--uts=", "--ipc=", "--net=", "--pid=", "--cgroup=", "--user=", "--time=")


def refused(stderr):
    """True when an unshare failed on the reference-loop check of a namespace bind (and ran nothing)."""
    return "unshare: mount /proc/" in (stderr or "") and "Invalid argument" in stderr


def _unshare_at(argv):
    return argv.index("unshare") if "unshare" in argv else None


def bound_files(argv):
    """The files the unshare in ``argv`` binds namespaces on."""
    at = _unshare_at(argv)
    if at is None:
        return []
    files = []
    for arg in argv[at + 1:]:
        if arg == "--" or not arg.startswith("-"):
            break
        if arg.startswith(_BOUND):
            files.append(arg.split("=", 1)[1])
    return files


def pinned(argv, cpu):
    """``argv`` with its unshare pinned to ``cpu`` and the command it runs given every CPU back."""
    at = _unshare_at(argv)
    if at is None:
        return argv
    everyone = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    cmd = at + 1
    while cmd < len(argv) and argv[cmd].startswith("-"):
        if argv[cmd] == "--":
            cmd += 1
            break
        cmd += 1 if "=" in argv[cmd] or argv[cmd] in ("-m", "-u", "-i", "-n", "-p", "-f", "--fork") else 2
    return (argv[:at] + ["taskset", "-c", str(cpu), "unshare"] + argv[at + 1:cmd]
            + ["taskset", "-c", everyone] + argv[cmd:])


def release(argv):
    """Unbind what a refused attempt had bound already (its other namespace files)."""
    for path in bound_files(argv):
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)


def attempts(argv):
    """``argv`` as given, then pinned to each CPU in turn."""
    yield argv
    for cpu in sorted(os.sched_getaffinity(0)):
        yield pinned(argv, cpu)


def run(argv, runner):
    """``runner(argv)`` until an attempt is not refused by the namespace-id check; the last result."""
    result = None
    for attempt in attempts(argv):
        if result is not None:
            release(argv)
        result = runner(attempt)
        if not refused(result.stderr):
            return result
    return result
