"""A guest's emulator process, found without libvirtd: for probe/monitor/stop when libvirtd is down or hung.

QEMU started by libvirt carries ``-uuid <domain uuid>`` and ``-name guest=<name>,...`` on its command line; we
scan /proc for that (pyra.host.processes) and never touch a process whose command line does not match both.

A libvirt-LXC container has no emulator: its controller ``libvirt_lxc --name <name> ...`` (no UUID on its
command line) is the parent of the container's init, which libvirt starts with ``LIBVIRT_LXC_NAME=<name>``
and ``LIBVIRT_LXC_UUID=<uuid>`` in its environment. A controller counts only when one of its children carries
both; the controller outlives libvirtd. Stopping a container means killing its init (the kernel then kills
its whole PID namespace, and the controller exits by itself): a controller killed first leaves the init
running, re-parented to PID 1, so the inits found are remembered by PID and start time until they are gone.
"""

import os

from pyra.host import processes

SIGTERM = 15
SIGKILL = 9
LXC_CONTROLLER = "libvirt_lxc"


def _is_emulator_of(argv, uuid, name):
    try:
        index = argv.index("-uuid")
    except ValueError:
        return False
    if index + 1 >= len(argv) or argv[index + 1] != uuid:
        return False
    if name is None:
        return True
    guest = "guest=" + name
    return any(guest in arg.split(",") for arg in argv)


def _is_lxc_controller_of(argv, name):
    """``libvirt_lxc ... --name <name> ...`` (the controller of the libvirt-LXC container ``name``)."""
    if not argv or os.path.basename(argv[0]) != LXC_CONTROLLER or not name:
        return False
    for index, arg in enumerate(argv[:-1]):
        if arg == "--name" and argv[index + 1] == name:
            return True
    return "--name=" + name in argv


def lxc_environ_matches(environ, uuid, name):
    """Whether the raw /proc/PID/environ bytes carry this container's LIBVIRT_LXC_UUID and LIBVIRT_LXC_NAME."""
    entries = environ.split(b"\0")
    return (("LIBVIRT_LXC_UUID=" + uuid).encode() in entries
            and (name is None or ("LIBVIRT_LXC_NAME=" + name).encode() in entries))


def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _lxc_inits(controller, uuid, name):
    return [kid for kid in processes.children(controller)
            if lxc_environ_matches(_environ(kid), uuid, name) and processes.alive(kid)]


def _scan(uuid, name):
    """(QEMU emulators, [(libvirt_lxc controller, [its container inits])]) of this guest."""
    qemu, lxc = [], []
    for pid in processes.find_by_cmdline(lambda argv: _is_emulator_of(argv, uuid, name)
                                         or _is_lxc_controller_of(argv, name)):
        if not processes.alive(pid):
            continue
        if _is_emulator_of(processes.cmdline(pid), uuid, name):
            qemu.append(pid)
            continue
        inits = _lxc_inits(pid, uuid, name)
        if inits:
            lxc.append((pid, inits))
    return qemu, lxc


def emulator_pids(uuid, name=None):
    """PIDs of live processes whose argv has ``-uuid <uuid>`` (and ``guest=<name>`` when given), or of the
    libvirt-LXC controller of container ``name`` whose init carries ``uuid``."""
    if not uuid:
        return []
    qemu, lxc = _scan(uuid, name)
    return qemu + [controller for controller, _inits in lxc]


def kill_emulator(uuid, name, deadline, log=None):
    """SIGTERM the guest's emulator, then SIGKILL for the rest of the deadline. True when none is left.

    A libvirt-LXC container: its init gets SIGTERM, then SIGKILL, before anything else."""
    inits = {}

    def containers():
        for _controller, found in _scan(uuid, name)[1]:
            for pid in found:
                inits.setdefault(pid, processes.start_time(pid))
        return [pid for pid, started in inits.items() if processes.alive(pid, started)]

    if uuid and containers():
        left = processes.terminate_in_stages(containers, deadline.share(0.8),
                                             stages=((SIGTERM, 0.5), (SIGKILL, 1.0)), log=log, poll=0.05)
        if left:
            return False
        # the controller exits when its init does; what the QEMU path below finds then is the rest
    left = processes.terminate_in_stages(lambda: emulator_pids(uuid, name), deadline,
                                         stages=((SIGTERM, 0.5), (SIGKILL, 1.0)), log=log, poll=0.05)
    return not left
