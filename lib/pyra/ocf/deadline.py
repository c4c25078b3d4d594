"""The operation's time budget.

Pacemaker SIGKILLs the agent's whole process group when ``OCF_RESKEY_CRM_meta_timeout`` runs out, so no
cleanup and no exit reason survive that. Every wait and every external call is therefore bounded by a
Deadline that ends a safety margin *before* Pacemaker's: the agent always gets to say why it gave up.
Escalation is staged by sharing the remaining budget (``share``): e.g. graceful stop for 60 %, then force.
"""

import time

MARGIN_FRACTION = 0.1
MARGIN_MIN = 0.5
MARGIN_MAX = 5.0


def margin_for(timeout):
    """Seconds kept in reserve before Pacemaker's timeout: 10 % of it, at least 0.5 s, at most 5 s."""
    return min(MARGIN_MAX, max(MARGIN_MIN, timeout * MARGIN_FRACTION))


class Deadline:
    """A point in monotonic time by which the work must be finished."""

    __slots__ = ("end", "start")

    def __init__(self, seconds, start=None):
        self.start = time.monotonic() if start is None else start
        self.end = self.start + max(0.0, seconds)

    @classmethod
    def for_operation(cls, timeout, margin=None):
        """The budget for an operation that Pacemaker will kill after ``timeout`` seconds."""
        if margin is None:
            margin = margin_for(timeout)
        return cls(max(0.0, timeout - margin))

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def elapsed(self):
        return time.monotonic() - self.start

    def expired(self):
        return time.monotonic() >= self.end

    def share(self, fraction):
        """A sub-deadline ending after ``fraction`` of the time that remains now (for staged escalation)."""
        fraction = min(1.0, max(0.0, fraction))
        return Deadline(self.remaining() * fraction)

    def within(self, seconds):
        """A sub-deadline ending after ``seconds`` or at this deadline, whichever is sooner."""
        return Deadline(min(max(0.0, seconds), self.remaining()))

    def sleep(self, seconds):
        """Sleep ``seconds`` but never past the deadline. Returns False when the deadline has passed."""
        left = self.remaining()
        time.sleep(min(max(0.0, seconds), left))
        return not self.expired()

    def wait_for(self, predicate, interval=0.1, max_interval=1.0):
        """Poll ``predicate()`` until it returns a true value or the deadline passes.

        The poll interval grows from ``interval`` to ``max_interval``. Returns the predicate's last value.
        """
        delay = interval
        while True:
            value = predicate()
            if value or self.expired():
                return value
            self.sleep(delay)
            delay = min(max_interval, delay * 1.5)

    def __repr__(self):
        return "Deadline(%.3fs left)" % self.remaining()


def retry(attempt, deadline, again, delay=0.2, max_delay=1.0, reserve=0.0, on_retry=None):
    """Call ``attempt()`` until ``again(outcome)`` is false or ``deadline`` leaves no time for another round.

    ``outcome`` is what ``attempt`` returned or the exception it raised. When no retry follows, a returned
    value is returned and an exception re-raised. Between attempts it sleeps ``delay`` seconds, growing by half
    each time up to ``max_delay``, and never into the last ``reserve`` seconds: once only those are left, the
    last outcome stands. ``on_retry(outcome, delay)`` is told before each sleep (to log, or to count). Pass a
    share of the operation's deadline (``deadline.share(0.8)``) to keep time for what follows. Used for locks another
    process holds for a while: a VG's sanlock lease, a device briefly in use, vzctl's container lock.
    """
    while True:
        try:
            outcome, raised = attempt(), False
        except Exception as err:  # handed to again(); re-raised below when no retry follows
            outcome, raised = err, True
        left = deadline.remaining() - reserve
        if not again(outcome) or left <= 0:
            if raised:
                raise outcome
            return outcome
        if on_retry is not None:
            on_retry(outcome, delay)
        deadline.sleep(min(delay, left))
        delay = min(max_delay, delay * 1.5)
