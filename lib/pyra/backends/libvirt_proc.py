"""A guest's emulator process, found without libvirtd: for probe/monitor/stop when libvirtd is down or hung.

QEMU started by libvirt carries ``-uuid <domain uuid>`` and ``-name guest=<name>,...`` on its command line; we
scan /proc for that (pyra.host.processes) and never touch a process whose command line does not match both.
"""

from pyra.host import processes

SIGTERM = 15
SIGKILL = 9


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


def emulator_pids(uuid, name=None):
    """PIDs of live processes whose argv has ``-uuid <uuid>`` (and ``guest=<name>`` when given)."""
    if not uuid:
        return []
    found = processes.find_by_cmdline(lambda argv: _is_emulator_of(argv, uuid, name))
    return [pid for pid in found if processes.alive(pid)]


def kill_emulator(uuid, name, deadline, log=None):
    """SIGTERM the guest's emulator, then SIGKILL for the rest of the deadline. True when none is left."""
    left = processes.terminate_in_stages(lambda: emulator_pids(uuid, name), deadline,
                                         stages=((SIGTERM, 0.5), (SIGKILL, 1.0)), log=log, poll=0.05)
    return not left
