"""libvirt's numbers that pyra acts on: domain states, paused reasons, the "no such domain" error code.

They are part of libvirt's stable ABI (libvirt-domain.h, virterror.h), so they are written here rather than
read from the ``libvirt`` module: the recurring monitor (pyra.backends.libvirt_wire) decides on them without
loading libvirt. A unit test holds them equal to the installed libvirt-python's.
"""

# virDomainState
NOSTATE = 0
RUNNING = 1
BLOCKED = 2
PAUSED = 3
SHUTDOWN = 4
SHUTOFF = 5
CRASHED = 6
PMSUSPENDED = 7

# virDomainPausedReason
PAUSED_USER = 1
PAUSED_IOERROR = 5
PAUSED_POSTCOPY_FAILED = 13

# virErrorNumber
ERR_OPERATION_INVALID = 55
ERR_NO_DOMAIN = 42

STATE_NAMES = {NOSTATE: "nostate", RUNNING: "running", BLOCKED: "blocked", PAUSED: "paused",
               SHUTDOWN: "in shutdown", SHUTOFF: "shut off", CRASHED: "crashed", PMSUSPENDED: "pmsuspended"}
PAUSED_REASONS = {0: "unknown", 1: "user", 2: "migration", 3: "save", 4: "dump", 5: "ioerror",
                  6: "watchdog", 7: "from snapshot", 8: "shutting down", 9: "snapshot", 10: "crashed",
                  11: "starting up", 12: "postcopy", 13: "postcopy failed"}
