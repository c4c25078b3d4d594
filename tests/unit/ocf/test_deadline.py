"""Deadlines derived from the operation timeout, and staged shares of them."""

import time

import pytest

from pyra.ocf.deadline import Deadline, margin_for, retry


@pytest.mark.parametrize("timeout,margin", [(20, 2.0), (90, 5.0), (300, 5.0), (3, 0.5), (1, 0.5)])
def test_margin(timeout, margin):
    assert margin_for(timeout) == pytest.approx(margin)


def test_for_operation_ends_before_pacemaker():
    d = Deadline.for_operation(20)
    assert 17.9 < d.remaining() <= 18.0


def test_share_and_within():
    d = Deadline(10)
    assert 5.9 < d.share(0.6).remaining() <= 6.0
    assert d.within(2).remaining() <= 2.0
    assert d.within(100).remaining() <= 10.0


def test_sleep_never_passes_the_deadline():
    d = Deadline(0.2)
    started = time.monotonic()
    assert d.sleep(5) is False
    assert time.monotonic() - started < 1.0


def test_wait_for_returns_value_or_gives_up():
    d = Deadline(2)
    calls = []
    assert d.wait_for(lambda: calls.append(1) or len(calls) >= 3, interval=0.01) is True
    assert len(calls) == 3
    d = Deadline(0.2)
    started = time.monotonic()
    assert not d.wait_for(lambda: False, interval=0.01)
    assert time.monotonic() - started < 1.0


# -- retry: the one loop for locks held a while ----------------------------------------------------------------
class _Clock:
    """A deadline whose sleeps only count (remaining/sleep, as Deadline has)."""

    def __init__(self, left):
        self.left = left
        self.slept = []

    def remaining(self):
        return max(0.0, self.left)

    def sleep(self, seconds):
        self.slept.append(round(seconds, 4))
        self.left -= seconds
        return self.left > 0


def test_retry_returns_once_the_outcome_is_not_retried():
    answers = iter([9, 9, 0])
    seen = []
    clock = _Clock(10)
    assert retry(lambda: next(answers), clock, lambda rc: rc == 9, delay=0.2, max_delay=0.25,
                 on_retry=lambda rc, d: seen.append((rc, d))) == 0
    assert seen == [(9, 0.2), (9, 0.25)] and clock.slept == [0.2, 0.25]


def test_retry_reraises_an_error_it_may_not_retry():
    def attempt():
        raise KeyError("other")
    with pytest.raises(KeyError):
        retry(attempt, _Clock(10), lambda e: isinstance(e, ValueError))


def test_retry_gives_the_last_outcome_when_only_the_reserve_is_left():
    calls = []

    def attempt():
        calls.append(1)
        raise ValueError("locked")
    clock = _Clock(2.0)
    with pytest.raises(ValueError):
        retry(attempt, clock, lambda e: isinstance(e, ValueError), delay=0.5, max_delay=5.0, reserve=0.5)
    assert clock.remaining() == pytest.approx(0.5) and sum(clock.slept) == pytest.approx(1.5)
    assert len(calls) == len(clock.slept) + 1
