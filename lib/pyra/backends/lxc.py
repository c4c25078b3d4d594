"""LXC (lxc-* tools, LXC 4/5) and the CRIU it checkpoints with: commands, states, exit codes.

Owns: `lxc-info -sH` state parsing (rc 1 = no such container), `lxc-start -d` (safe with pipes),
`lxc-stop -t N` (rc 2 = not running; 0 after a kill at the timeout) and `-k`, `lxc-checkpoint -s/-r`, and the
CRIU version check (Debian 12's CRIU 3.17 cannot run on kernels >= 6.13: checkpoint needs CRIU >= 4.1).

Pitfall handled here: `lxc-checkpoint -r` daemonizes a monitor that inherits the caller's stdout/stderr, so a
captured call would not return until the container stops. Its output goes to an LXC log file instead.
LXC's command socket is abstract (per network namespace): run the agent in the netns that started it.
"""

import os

RUNNING = "RUNNING"
STOPPED = "STOPPED"
FROZEN = "FROZEN"
MISSING = "MISSING"  # lxc-info rc 1: the container is not defined in this lxcpath

RC_STOP_NOT_RUNNING = 2
CRIU_MIN = (4, 1)


def parse_state(rc, stdout):
    """State word from `lxc-info -sH` (or `-s`): RUNNING, STOPPED, FROZEN...; MISSING for rc 1; None if odd."""
    if rc == 1:
        return MISSING
    if rc != 0:
        return None
    for line in stdout.splitlines():
        word = line.strip()
        if word.startswith("State:"):
            word = word[6:].strip()
        if word:
            return word if word.isalpha() and word.isupper() else None
    return None


def parse_criu_version(text):
    """(major, minor, patch) from `criu --version` ("Version: 3.17.1"), or None."""
    for line in text.splitlines():
        if line.startswith("Version:"):
            parts = line.split(":", 1)[1].strip().split(".")
            try:
                nums = [int(p) for p in parts[:3]]
            except ValueError:
                return None
            while len(nums) < 3:
                nums.append(0)
            return tuple(nums)
    return None


class Lxc:
    """Calls to the lxc-* tools for one container, through ``run`` under ``deadline``."""

    def __init__(self, run, deadline, name, lxcpath=None, config=None):
        self._run = run
        self.deadline = deadline
        self.name = name
        self.lxcpath = lxcpath
        self.config = config

    def _argv(self, tool, *args):
        argv = [tool, "-n", self.name]
        if self.lxcpath:
            argv += ["-P", self.lxcpath]
        return argv + list(args)

    def state(self):
        """Returns (state or None, CommandResult)."""
        result = self._run(self._argv("lxc-info", "-sH"))
        return parse_state(result.rc, result.stdout) if not result.timed_out else None, result

    def start(self):
        args = ["-d"] + (["-f", self.config] if self.config else [])
        return self._run(self._argv("lxc-start", *args))

    def stop(self, timeout_s):
        """Graceful stop: halt signal, then SIGKILL after ``timeout_s`` (lxc-stop -t)."""
        t = max(1, int(timeout_s))
        return self._run(self._argv("lxc-stop", "-t", str(t)), timeout=t + 5)

    def kill(self):
        return self._run(self._argv("lxc-stop", "-k"))

    def checkpoint(self, directory, logfile):
        """Dump into ``directory`` and stop the container."""
        return self._run(self._argv("lxc-checkpoint", "-s", "-D", directory, "-o", logfile, "-l", "ERROR"),
                         capture_stdout=False, capture_stderr=False)

    def restore(self, directory, logfile):
        """Restore from ``directory``; output to ``logfile`` (never captured: see the module docstring)."""
        return self._run(self._argv("lxc-checkpoint", "-r", "-D", directory, "-o", logfile, "-l", "ERROR"),
                         capture_stdout=False, capture_stderr=False)

    def default_dumpdir(self, lxcpath_default="/var/lib/lxc"):
        return os.path.join(self.lxcpath or lxcpath_default, self.name, "checkpoint")


def criu_version(run, which):
    """(path, version tuple or None) of the criu on PATH; (None, None) when not installed."""
    path = which("criu")
    if not path:
        return None, None
    result = run([path, "--version"], timeout=5)
    return path, parse_criu_version(result.stdout) if result.ok else None
