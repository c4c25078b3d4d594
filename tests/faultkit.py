"""Tools shared by the fault-injection tests (tests/FAULTS.md).

- ``spawn`` / ``kill_group``: an agent action that the test SIGKILLs the way pacemaker-execd kills a timed-out
  agent (its whole process group), to check that the re-run action converges.
- ``state_lines``: an instance's state record, failing on a torn file.
- ``hanging_tool`` / ``hung_wrappers_gone``: a wrapper around a tool that ignores SIGTERM and sleeps forever (for
  one sub-command or for every call), and the check that the agent's runner killed every such wrapper it started.
"""
import os
import signal
import subprocess
import time

import harness


def spawn(agent, action, params, rsctmp, instance, timeout_ms=30000, env=None, prefix=()):
    """Start one action in its own process group, output discarded; returns the Popen."""
    environ = harness.agent_env(harness.agent_path(agent), params, timeout_ms=timeout_ms, rsctmp=rsctmp,
                                instance=instance, env=env)
    return subprocess.Popen(list(prefix) + [harness.agent_path(agent), action], env=environ,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            process_group=0)


def kill_group(proc, after=0.0):
    """After ``after`` seconds (the action must still be running then), SIGKILL its whole process group."""
    if after:
        time.sleep(after)
        assert proc.poll() is None, "the action finished before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def state_path(rsctmp, agent, instance):
    return os.path.join(rsctmp, "pyra", agent, instance + ".state")


def state_lines(rsctmp, agent, instance):
    """The record's lines (None when there is no record); every line must be a whole key=value."""
    path = state_path(rsctmp, agent, instance)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        lines = handle.read().splitlines()
    assert all("=" in line for line in lines), lines
    return lines


def hanging_tool(path, real, subcommand=None):
    """Write at ``path`` a wrapper of ``real`` that hangs, ignoring SIGTERM, when its first non-option argument
    is ``subcommand`` (every call when None) and runs ``real`` otherwise. The PIDs of the hanging wrappers are
    appended to ``path``.pids. Returns ``path`` as a string."""
    path = str(path)
    select = ""
    if subcommand:
        select = ('for a; do case $a in --*) ;; *) [ "$a" = %s ] || exec %s "$@"; break ;; esac; done\n'
                  % (subcommand, real))
    with open(path, "w") as handle:
        handle.write("#!/bin/sh\n%strap '' TERM\necho $$ >> %s.pids\nsleep 600\n" % (select, path))
    os.chmod(path, 0o755)
    return path


def hung_wrappers_gone(path, timeout=5.0):
    """Every hanging wrapper written at ``path`` was started at least once and is gone (killed by the runner)."""
    pids_file = str(path) + ".pids"
    pids = [int(x) for x in open(pids_file).read().split()] if os.path.exists(pids_file) else []
    assert pids, "the hanging wrapper was never called"
    end = time.monotonic() + timeout
    while any(os.path.exists("/proc/%d" % p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(os.path.exists("/proc/%d" % p) for p in pids), pids
