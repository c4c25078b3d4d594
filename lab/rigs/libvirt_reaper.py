#!/usr/bin/python3
"""libvirt_reaper.py CMD [ARGS...]: run CMD under a child subreaper that reaps every orphan at once.

libvirt daemonizes QEMU, so QEMU's parent is the nearest subreaper; on these machines PID 1 reaps zombies
only about once a second, and virDomainDestroy polls kill(pid, 0) until the process is gone (a zombie still
counts), so every destroy took ~1.5 s. Under this wrapper destroy takes ~0.2 s. SIGTERM/SIGINT/SIGHUP are
forwarded to CMD; the wrapper exits with CMD's status when CMD exits.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    return run(sys.argv[1:])


def run(argv) -> int:
    """Run ``argv`` under this process as a child subreaper; returns its exit status."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno())
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child:
            rc = os.waitstatus_to_exitcode(status)
            return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
