"""Deadlines derived from the operation timeout, and staged shares of them."""

import time

import pytest

from pyra.ocf.deadline import Deadline, margin_for


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
