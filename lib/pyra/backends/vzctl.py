"""vzctl (OpenVZ <= 6 and OpenVZ 7): the command line contract, its status output and its exit codes.

Owns: parsing both `vzctl status` formats, and calling vzctl with the operation's deadline, retrying while
another vzctl holds the container lock (exit 9). Knows nothing about OCF codes: the agent decides what a
state means.

    legacy:   CTID <id> exist|deleted mounted|unmounted running|down[ suspended]
    OpenVZ 7: VEID <id> exist|deleted mounted|unmounted running|paused|suspended|down
              (the man page shows a 6th word "suspended"; accepted too)
"""

RUNNING = "running"
PAUSED = "paused"
SUSPENDED = "suspended"
DOWN = "down"

# exit codes (vzerror.h, man vzctl)
RC_LOCKED = 9
RC_NOT_RUNNING = 31
RC_RUNNING = 32

_STATES = (RUNNING, PAUSED, SUSPENDED, DOWN)


class StatusFormatError(ValueError):
    """vzctl printed something that is neither status format."""


class Status:
    """One parsed `vzctl status` line."""

    __slots__ = ("ctid", "exists", "mounted", "state", "flavor")

    def __init__(self, ctid, exists, mounted, state, flavor):
        self.ctid = ctid
        self.exists = exists
        self.mounted = mounted
        self.state = state
        self.flavor = flavor

    @property
    def running(self):
        """The container's processes exist (running, or paused = frozen but alive)."""
        return self.state in (RUNNING, PAUSED)

    def __repr__(self):
        return "Status(%s %s %s %s %s)" % (self.flavor, self.ctid, "exist" if self.exists else "deleted",
                                           "mounted" if self.mounted else "unmounted", self.state)


def parse_status(text):
    """Parse the output of `vzctl status ID`; raises StatusFormatError with the offending line."""
    line = ""
    for candidate in text.splitlines():
        if candidate.startswith(("CTID ", "VEID ")):
            line = candidate
            break
    words = line.split()
    if len(words) < 5 or len(words) > 6:
        raise StatusFormatError("unexpected vzctl status output: %r" % (text.strip()[:80],))
    head, ctid, exist, mounted, state = words[:5]
    extra = words[5] if len(words) == 6 else None
    if exist not in ("exist", "deleted") or mounted not in ("mounted", "unmounted") or state not in _STATES:
        raise StatusFormatError("unexpected vzctl status output: %r" % (line[:80],))
    if extra is not None and extra != SUSPENDED:
        raise StatusFormatError("unexpected vzctl status output: %r" % (line[:80],))
    flavor = "vz7" if head == "VEID" else "legacy"
    if state == DOWN and extra == SUSPENDED:
        state = SUSPENDED  # legacy: not running, a dump file exists
    elif extra == SUSPENDED and state == RUNNING:
        state = PAUSED  # vz7 man page form: running + suspended = CPT-suspended
    return Status(ctid, exist == "exist", mounted == "mounted", state, flavor)


class Vzctl:
    """Calls to one vzctl binary through ``run`` (pyra.host.command.run semantics) under ``deadline``."""

    def __init__(self, run, deadline, binary="vzctl", lock_wait=0.25):
        self._run = run
        self.deadline = deadline
        self.binary = binary
        self.lock_wait = lock_wait
        self.lock_retries = 0

    def call(self, args, timeout=None, retry_locked=True):
        """Run ``vzctl args``; while it answers 9 (locked by another vzctl), retry inside the deadline, keeping
        half a second to report the last answer."""
        from pyra.ocf.deadline import retry

        def counted(_result, _delay):
            self.lock_retries += 1
        return retry(lambda: self._run([self.binary, *args], timeout=timeout), self.deadline,
                     lambda result: retry_locked and result.rc == RC_LOCKED,
                     delay=self.lock_wait, max_delay=2.0, reserve=0.5, on_retry=counted)

    def status(self, ctid):
        """Returns (Status or None, CommandResult). None when vzctl failed or printed something unknown."""
        result = self._run([self.binary, "status", ctid], timeout=None)
        if not result.ok:
            return None, result
        try:
            return parse_status(result.stdout), result
        except StatusFormatError:
            return None, result

    def start(self, ctid, wait=True, timeout=None):
        return self.call(["start", ctid, "--wait"] if wait else ["start", ctid], timeout=timeout)

    def stop(self, ctid, fast=False, timeout=None):
        return self.call(["stop", ctid, "--fast"] if fast else ["stop", ctid], timeout=timeout)

    def chkpnt(self, ctid, dumpfile=None, timeout=None):
        return self.call(["chkpnt", ctid] + (["--dumpfile", dumpfile] if dumpfile else []), timeout=timeout)

    def restore(self, ctid, dumpfile=None, timeout=None):
        return self.call(["restore", ctid] + (["--dumpfile", dumpfile] if dumpfile else []), timeout=timeout)
