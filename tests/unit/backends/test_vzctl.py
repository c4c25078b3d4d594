"""Parsers of the vzctl and lxc backends: both vzctl status formats, lxc-info states, CRIU versions."""
import pytest
from hypothesis import given, strategies as st

from pyra.backends import lxc, vzctl


@pytest.mark.parametrize("line,flavor,exists,mounted,state", [
    ("CTID 101 exist mounted running", "legacy", True, True, vzctl.RUNNING),
    ("CTID 101 exist unmounted down", "legacy", True, False, vzctl.DOWN),
    ("CTID 101 deleted unmounted down", "legacy", False, False, vzctl.DOWN),
    ("CTID 101 exist unmounted down suspended", "legacy", True, False, vzctl.SUSPENDED),
    ("VEID 101 exist mounted running", "vz7", True, True, vzctl.RUNNING),
    ("VEID 1a2b-33 exist mounted paused", "vz7", True, True, vzctl.PAUSED),
    ("VEID web exist unmounted suspended", "vz7", True, False, vzctl.SUSPENDED),
    ("VEID 101 exist unmounted down", "vz7", True, False, vzctl.DOWN),
    ("VEID 101 exist mounted running suspended", "vz7", True, True, vzctl.PAUSED),  # man-page form
])
def test_status_formats(line, flavor, exists, mounted, state):
    s = vzctl.parse_status(line + "\n")
    assert (s.flavor, s.exists, s.mounted, s.state) == (flavor, exists, mounted, state)
    assert s.running == (state in (vzctl.RUNNING, vzctl.PAUSED))


def test_status_skips_noise_lines():
    s = vzctl.parse_status("Warning: something\nCTID 7 exist mounted running\n")
    assert s.ctid == "7" and s.state == vzctl.RUNNING


@pytest.mark.parametrize("text", [
    "", "CTID 101", "CTID 101 exist mounted", "CTID 101 exist mounted flying",
    "CTID 101 maybe mounted running", "CTID 101 exist half running", "CTID 101 exist mounted running extra",
    "Container is locked",
])
def test_status_rejects_unknown(text):
    with pytest.raises(vzctl.StatusFormatError):
        vzctl.parse_status(text)


@given(st.text(max_size=60))
def test_status_parser_never_crashes(text):
    try:
        s = vzctl.parse_status(text)
    except vzctl.StatusFormatError:
        return
    assert s.state in (vzctl.RUNNING, vzctl.PAUSED, vzctl.SUSPENDED, vzctl.DOWN)


@pytest.mark.parametrize("rc,out,state", [
    (0, "RUNNING\n", lxc.RUNNING), (0, "State:          STOPPED\n", lxc.STOPPED), (0, "FROZEN", lxc.FROZEN),
    (1, "", lxc.MISSING), (2, "", None), (0, "", None), (0, "weird 1\n", None),
])
def test_lxc_state(rc, out, state):
    assert lxc.parse_state(rc, out) == state


@pytest.mark.parametrize("text,version", [
    ("Version: 3.17.1\n", (3, 17, 1)), ("Version: 4.1\nGitID: v4.1\n", (4, 1, 0)), ("nothing", None),
    ("Version: x.y\n", None),
])
def test_criu_version(text, version):
    assert lxc.parse_criu_version(text) == version


class _R:
    def __init__(self, rc):
        self.rc, self.timed_out, self.stdout, self.stderr = rc, False, "", ""

    @property
    def ok(self):
        return self.rc == 0


class _Deadline:
    def __init__(self, left):
        self.left = left

    def remaining(self):
        return self.left

    def sleep(self, s):
        self.left -= s
        return self.left > 0


def test_lock_is_retried_inside_the_deadline():
    answers = [9, 9, 0]
    calls = []

    def run(argv, timeout=None):
        calls.append(argv)
        return _R(answers.pop(0))

    vz = vzctl.Vzctl(run, _Deadline(10), "vzctl")
    assert vz.start("101").rc == 0
    assert len(calls) == 3 and vz.lock_retries == 2
    assert calls[0] == ["vzctl", "start", "101", "--wait"]


def test_lock_gives_up_when_the_deadline_is_near():
    def run(argv, timeout=None):
        return _R(9)

    vz = vzctl.Vzctl(run, _Deadline(2), "vzctl")
    assert vz.stop("101").rc == 9
    assert vz.lock_retries <= 6
