"""run_quick: the subprocess-free runner of ManageVE's status queries keeps pyra.host.command.run's contract."""
import os
import time

from pyra.backends.vzctl_spawn import run_quick
from pyra.ocf.deadline import Deadline


def test_captures_stdout_stderr_and_rc():
    r = run_quick(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.rc, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    assert not r.ok


def test_not_found():
    r = run_quick(["/nonexistent/vzctl", "status", "1"])
    assert r.rc == 127 and r.error
    r = run_quick(["pyra-ve-no-such-program"])
    assert r.rc == 127


def test_timeout_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / "child"
    t = time.monotonic()
    r = run_quick(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout=0.5)
    assert r.timed_out and r.rc is None
    assert time.monotonic() - t < 3
    child = int(pidfile.read_text())
    for _ in range(50):
        if not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split(") ")[1][0] == "Z":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("grandchild survived the timeout")


def test_deadline_bounds_the_call():
    t = time.monotonic()
    r = run_quick(["sleep", "10"], deadline=Deadline(0.3))
    assert r.timed_out and time.monotonic() - t < 2


def test_large_output():
    r = run_quick(["sh", "-c", "head -c 300000 /dev/zero | tr '\\\\0' x"])
    assert r.rc == 0 and len(r.stdout) == 300000
