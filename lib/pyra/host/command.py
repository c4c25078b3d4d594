"""Run an external command with a deadline: argv lists only, never a shell, never ``subprocess`` on the hot path.

The child stays in the agent's process group: when Pacemaker's timeout SIGKILLs an agent it kills the whole
group (pacemaker-execd's ``kill(-pid)``), and a tool the agent started must die with it rather than outlive it
holding locks (a ``vzctl stop`` or an ``lvchange`` still running when the next action comes). When the
command's own time is up (the agent's deadline always ends before Pacemaker's), its process tree (the tool and
anything it forked) is stopped and killed. A child that leaves a grandchild holding our pipes (lxc-start's monitor
does) cannot hang us: after the kill we wait at most one second for EOF, then close the pipes. Pass
``capture_stderr=False`` for such tools in the first place.
"""

import os
import time

NOT_FOUND = 127
NOT_EXECUTABLE = 126
DEFAULT_TIMEOUT = 30.0


class CommandResult:
    """What one external call did."""

    __slots__ = ("argv", "rc", "stdout", "stderr", "duration", "timed_out", "error")

    def __init__(self, argv, rc, stdout="", stderr="", duration=0.0, timed_out=False, error=None):
        self.argv = tuple(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.duration = duration
        self.timed_out = timed_out
        self.error = error

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out

    def argv_text(self):
        return " ".join(self.argv)

    def status_text(self):
        if self.timed_out:
            return "timed out after %.1f s" % self.duration
        if self.error:
            return self.error
        return "rc=%s" % self.rc

    def summary(self):
        """A short sentence for an exit reason: which program, what happened, its last stderr line."""
        program = os.path.basename(self.argv[0]) if self.argv else "?"
        if len(self.argv) > 1 and not self.argv[1].startswith("-"):
            program += " " + self.argv[1]
        detail = ""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
            if lines:
                detail = ": " + lines[-1]
                break
        if self.timed_out:
            return "%s timed out after %.0f s" % (program, self.duration)
        if self.error:
            return "%s: %s" % (program, self.error)
        return "%s failed (rc=%s)%s" % (program, self.rc, detail)

    def __repr__(self):
        return "CommandResult(%r, rc=%r, timed_out=%r)" % (self.argv, self.rc, self.timed_out)


class HostError(Exception):
    """Base of what ``pyra.host`` raises; ``reason`` is written for the admin. The OCF runtime maps these to
    conditions (it knows them through the agents floor; this floor knows nothing of OCF)."""

    def __init__(self, reason, result=None):
        super().__init__(reason)
        self.reason = reason
        self.result = result

    def __str__(self):
        return self.reason


class OutOfTime(HostError):
    """The caller's deadline left no time to run the command at all."""


class CommandFailed(HostError):
    """A command run with ``check=True`` did not exit 0 (``result`` says how)."""


def _decode(data):
    return data.decode("utf-8", "replace") if data else ""


def run(argv, deadline=None, timeout=None, input=None, env=None, cwd=None, capture_stdout=True,
        capture_stderr=True, tracer=None, check=False):
    """Run ``argv`` and return a CommandResult; never raises for the command's own failure unless ``check``.

    The time allowed is the smaller of ``timeout`` and what ``deadline`` has left (DEFAULT_TIMEOUT when
    neither is given). An already expired deadline raises OutOfTime without running anything.
    ``input`` (str or bytes) is written to stdin; otherwise stdin is /dev/null. ``check=True`` raises
    CommandFailed(result.summary()) when the command did not exit 0.

    Implemented with ``posix_spawn`` and ``poll``: ``import subprocess`` alone costs ~6 ms, more than the
    status query a monitor runs. (``cwd`` needs a chdir in the child, which posix_spawn cannot do in
    Python 3.11: that rare case goes through subprocess.)
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("empty argv")
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    if deadline is not None:
        left = deadline.remaining()
        if left <= 0:
            raise OutOfTime("no time left to run %s" % os.path.basename(argv[0]))
        limit = min(limit, left)
    if isinstance(input, str):
        input = input.encode("utf-8")
    if cwd is not None:
        result = _run_subprocess(argv, limit, input, env, cwd, capture_stdout, capture_stderr)
    else:
        result = _run_spawn(argv, limit, input, env, capture_stdout, capture_stderr)
    if tracer is not None:
        tracer(result)
    if check and not result.ok:
        raise CommandFailed(result.summary(), result)
    return result


def _search(program, environ):
    if "/" in program:
        return program
    for directory in (environ.get("PATH") or os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def _run_spawn(argv, limit, input, env, capture_stdout, capture_stderr):
    import select
    started = time.monotonic()
    environ = os.environ if env is None else env
    path = _search(argv[0], environ)
    if path is None:
        return CommandResult(argv, NOT_FOUND, duration=time.monotonic() - started, error="not found")
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    parent_fds, child_fds, actions = {}, [devnull], []
    for target, wanted in ((0, input is not None), (1, capture_stdout), (2, capture_stderr)):
        if not wanted:
            actions.append((os.POSIX_SPAWN_DUP2, devnull, target))
            continue
        read_end, write_end = os.pipe()  # both close-on-exec; dup2 clears it on the target only
        if target == 0:
            parent_fds[target], child_end = write_end, read_end
        else:
            parent_fds[target], child_end = read_end, write_end
        child_fds.append(child_end)
        actions.append((os.POSIX_SPAWN_DUP2, child_end, target))
    try:
        # setsigdef: Python ignores SIGPIPE and SIGXFSZ; the child must get the defaults back.
        pid = os.posix_spawn(path, argv, environ, file_actions=actions, setsigdef=(13, 25))
    except OSError as err:
        for fd in child_fds + list(parent_fds.values()):
            os.close(fd)
        if isinstance(err, FileNotFoundError):
            return CommandResult(argv, NOT_FOUND, duration=time.monotonic() - started, error="not found")
        if isinstance(err, PermissionError):
            return CommandResult(argv, NOT_EXECUTABLE, duration=time.monotonic() - started,
                                 error="permission denied")
        return CommandResult(argv, NOT_EXECUTABLE, duration=time.monotonic() - started, error=str(err))
    for fd in child_fds:
        os.close(fd)
    end = started + limit
    chunks = {1: [], 2: []}
    poller = select.poll()
    by_fd = {}
    for target, fd in parent_fds.items():
        if target == 0:
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLOUT)
        else:
            poller.register(fd, select.POLLIN)
        by_fd[fd] = target
    pending = memoryview(input) if input is not None else None
    status = None
    timed_out = False
    while True:
        if not by_fd:
            status = _wait(pid, end)
            timed_out = status is None
            break
        left = end - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for fd, _event in poller.poll(max(1, int(left * 1000))):
            target = by_fd[fd]
            if target == 0:
                try:
                    if pending:
                        pending = pending[os.write(fd, pending):]
                    done = not pending
                except BrokenPipeError:
                    done = True
                except BlockingIOError:
                    done = False
                if done:
                    poller.unregister(fd)
                    del by_fd[fd]
                    os.close(fd)
                continue
            data = os.read(fd, 65536)
            if data:
                chunks[target].append(data)
            else:
                poller.unregister(fd)
                del by_fd[fd]
                os.close(fd)
    if timed_out:
        _kill_tree(pid)
        # Drain for at most a second: a daemonised grandchild (not in the tree) may still hold the pipes.
        drain_end = time.monotonic() + 1.0
        while by_fd and time.monotonic() < drain_end:
            for fd, _ in poller.poll(100):
                target = by_fd.get(fd)
                if target in (1, 2):
                    data = os.read(fd, 65536)
                    if data:
                        chunks[target].append(data)
                        continue
                poller.unregister(fd)
                del by_fd[fd]
                os.close(fd)
        for fd in by_fd:
            os.close(fd)
        _wait(pid, time.monotonic() + 1.0)
    rc = None if timed_out else os.waitstatus_to_exitcode(status)
    return CommandResult(argv, rc, _decode(b"".join(chunks[1])), _decode(b"".join(chunks[2])),
                         time.monotonic() - started, timed_out)


def _wait(pid, end):
    """waitpid with a deadline: the status, or None when the child is still running at ``end``."""
    delay = 0.001
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= end:
            return None
        time.sleep(delay)
        delay = min(0.05, delay * 2)


def _kill_tree(pid):
    from pyra.host.processes import kill_tree
    kill_tree(pid)


def _run_subprocess(argv, limit, input, env, cwd, capture_stdout, capture_stderr):
    import subprocess
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE if capture_stderr else subprocess.DEVNULL,
            env=env, cwd=cwd, close_fds=True)
    except FileNotFoundError:
        return CommandResult(argv, NOT_FOUND, duration=time.monotonic() - started, error="not found")
    except PermissionError:
        return CommandResult(argv, NOT_EXECUTABLE, duration=time.monotonic() - started,
                             error="permission denied")
    except OSError as err:
        return CommandResult(argv, NOT_EXECUTABLE, duration=time.monotonic() - started, error=str(err))
    timed_out = False
    try:
        out, errout = proc.communicate(input, timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_tree(proc.pid)
        try:
            out, errout = proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            for pipe in (proc.stdout, proc.stderr, proc.stdin):
                if pipe:
                    pipe.close()
            out, errout = b"", b""
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
    return CommandResult(argv, None if timed_out else proc.returncode, _decode(out), _decode(errout),
                         time.monotonic() - started, timed_out)


def which(program, path=None):
    """The absolute path of ``program`` on PATH, or None. Honours ocf-tester's OCF_TESTER_FAIL_HAVE_BINARY."""
    if os.environ.get("OCF_TESTER_FAIL_HAVE_BINARY") == "1":
        return None
    if "/" in program:
        return program if os.access(program, os.X_OK) and not os.path.isdir(program) else None
    for directory in (path or os.environ.get("PATH") or os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None
