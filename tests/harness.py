"""Run an agent the way Pacemaker and ocf-tester do, and capture what it said.

``run_agent`` executes ``agents/<Agent>`` from the source tree (or an installed path) under
``/usr/bin/python3`` semantics (the agent's shebang), with a clean environment like pacemaker-execd's:
OCF_ROOT, OCF_RA_VERSION_*, OCF_RESOURCE_INSTANCE/TYPE/PROVIDER, OCF_EXIT_REASON_PREFIX, CRM_meta_timeout and
interval, OCF_CHECK_LEVEL, HA_RSCTMP, PATH, and the parameters as OCF_RESKEY_*. It runs in its own process
group and is killed as a group when it exceeds the timeout, exactly as Pacemaker does.
"""

import os
import signal
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENTS_DIR = os.path.join(REPO, "agents")
INSTALLED_DIR = "/usr/lib/ocf/resource.d/pyra"
DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
REASON_PREFIX = "ocf-exit-reason:"


class AgentRun:
    def __init__(self, argv, rc, stdout, stderr, elapsed, killed):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.killed = killed

    @property
    def exit_reasons(self):
        return [line[len(REASON_PREFIX):] for line in self.stderr.splitlines() if line.startswith(REASON_PREFIX)]

    @property
    def exit_reason(self):
        reasons = self.exit_reasons
        return reasons[-1] if reasons else None

    def __repr__(self):
        return "AgentRun(rc=%r, elapsed=%.2fs, reason=%r, stderr=%r)" % (
            self.rc, self.elapsed, self.exit_reason, self.stderr[-500:])


def agent_path(agent, installed=False):
    if os.path.isabs(agent):
        return agent
    return os.path.join(INSTALLED_DIR if installed else AGENTS_DIR, agent)


def agent_env(agent, params=None, interval=None, timeout_ms=20000, check_level=None, rsctmp=None,
              instance=None, env=None, ra_version="1.1", meta=None):
    """The environment Pacemaker would give ``agent`` for one operation."""
    name = os.path.basename(agent)
    environ = {
        "PATH": DEFAULT_PATH,
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": instance or "test-" + name.lower(),
        "OCF_RESOURCE_TYPE": name,
        "OCF_RESOURCE_PROVIDER": "pyra",
        "OCF_EXIT_REASON_PREFIX": REASON_PREFIX,
        "LC_ALL": "C",
    }
    if ra_version:
        major, _, minor = ra_version.partition(".")
        environ["OCF_RA_VERSION_MAJOR"] = major
        environ["OCF_RA_VERSION_MINOR"] = minor or "0"
    if timeout_ms is not None:
        environ["OCF_RESKEY_CRM_meta_timeout"] = str(timeout_ms)
    if interval is not None:
        environ["OCF_RESKEY_CRM_meta_interval"] = str(interval)
    if check_level is not None:
        environ["OCF_CHECK_LEVEL"] = str(check_level)
    if rsctmp:
        environ["HA_RSCTMP"] = rsctmp
    for key, value in (meta or {}).items():
        environ["OCF_RESKEY_CRM_meta_" + key.replace("-", "_")] = str(value)
    for key, value in (params or {}).items():
        if value is not None:
            environ["OCF_RESKEY_" + key] = str(value)
    environ.update(env or {})
    return environ


def run_agent(agent, action, params=None, interval=None, timeout_ms=20000, check_level=None, rsctmp=None,
              instance=None, env=None, ra_version="1.1", meta=None, installed=False, kill_after=None):
    """Run one action; ``kill_after`` (seconds, default timeout_ms + 5 s) is when the group is SIGKILLed."""
    path = agent_path(agent, installed)
    environ = agent_env(path, params, interval, timeout_ms, check_level, rsctmp, instance, env, ra_version, meta)
    argv = [path] + ([action] if action is not None else [])
    if kill_after is None:
        kill_after = (timeout_ms or 20000) / 1000.0 + 5.0
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, process_group=0)
    killed = False
    try:
        out, err = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        killed = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return AgentRun(argv, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                    time.monotonic() - started, killed)


def ocf_tester(agent, params, name="pyra-test", installed=False, env=None, timeout=600):
    """Run the distro's ocf-tester on ``agent`` with ``params``; returns (rc, output)."""
    argv = ["/usr/sbin/ocf-tester", "-n", name]
    for key, value in params.items():
        argv += ["-o", "%s=%s" % (key, value)]
    argv.append(agent_path(agent, installed))
    environ = {"PATH": DEFAULT_PATH, "LC_ALL": "C"}
    environ.update(env or {})
    proc = subprocess.run(argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def list_agents():
    """The agent executables in the source tree."""
    return sorted(name for name in os.listdir(AGENTS_DIR)
                  if os.access(os.path.join(AGENTS_DIR, name), os.X_OK) and not name.startswith("."))
