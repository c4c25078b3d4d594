"""The one return-code policy: (condition, action, probe?, state record?) -> OCF code.

Every agent reports *what it found* (a condition); this table alone decides *which code* Pacemaker sees.
It encodes the rules of DESIGN §3 and §5:
- 6 (fatal cluster-wide) only from validate-all and start, never from a probe, monitor or stop;
- an environment that is not usable on this node: probe 7, stop 0, recurring monitor 1, start 5 — but a
  probe or stop on a node whose state record says "started here" cannot claim "stopped": it answers 1;
- a resource that is down although its record says it was started (a crash): recurring monitor 1, probe 7;
- degraded: 190 from monitor, success elsewhere.
"""

from pyra.ocf import codes

CONFIG_INVALID = "config-invalid"   # parameters invalid everywhere
ENV_MISSING = "env-missing"         # config file, binary, storage or daemon not usable on this node
FAILED = "failed"                   # the operation did not achieve its goal
DEGRADED = "degraded"               # running, but impaired (I/O error pause, missing PVs, read-only remount)
CRASHED = "crashed"                 # not running, yet our record says we started it and never stopped it
NOT_RUNNING = "not-running"         # cleanly stopped
UNIMPLEMENTED = "unimplemented"     # action not supported

CONDITIONS = (CONFIG_INVALID, ENV_MISSING, FAILED, DEGRADED, CRASHED, NOT_RUNNING, UNIMPLEMENTED)


def decide(condition, action, probe=False, has_record=False):
    """The OCF return code for ``condition`` met during ``action``.

    ``probe``: the action is a monitor with interval 0 or unset. ``has_record``: this node's state file
    says the resource was started here and not cleanly stopped since (so "not visible" is not "stopped").
    """
    if condition == UNIMPLEMENTED:
        return codes.ERR_UNIMPLEMENTED
    if condition == DEGRADED:
        return codes.DEGRADED if action == "monitor" else codes.SUCCESS
    if condition == NOT_RUNNING:
        if action == "monitor":
            return codes.NOT_RUNNING
        if action == "stop":
            return codes.SUCCESS
        return codes.ERR_GENERIC
    if condition == CRASHED:
        if action == "monitor":
            return codes.NOT_RUNNING if probe else codes.ERR_GENERIC
        if action == "stop":
            return codes.SUCCESS
        return codes.ERR_GENERIC
    if condition in (CONFIG_INVALID, ENV_MISSING):
        if action in ("validate-all", "start"):
            return codes.ERR_CONFIGURED if condition == CONFIG_INVALID else codes.ERR_INSTALLED
        if action == "monitor" and probe:
            return codes.ERR_GENERIC if has_record else codes.NOT_RUNNING
        if action == "stop":
            return codes.ERR_GENERIC if has_record else codes.SUCCESS
        return codes.ERR_GENERIC
    return codes.ERR_GENERIC


def normalise_check_level(requested, supported):
    """An unknown OCF_CHECK_LEVEL falls back to the next lower supported level (OCF 1.1 "Check Levels")."""
    best = None
    for level in sorted(supported):
        if level <= requested:
            best = level
    return best if best is not None else min(supported)
