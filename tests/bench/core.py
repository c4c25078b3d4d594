"""Side-by-side process benchmarks: the same job done by pyra (A) and by an anchor (B), in one run.

Each command is a whole process (fork + exec, as Pacemaker runs agents). Runs alternate A, B, A, B ... so
that machine noise hits both alike; wall time comes from the monotonic clock, CPU time (user + system of the
child and its children) from ``wait4``'s rusage, like ``/usr/bin/time``. The table reports medians and the
ratios A/B. A command that exits with an unexpected code invalidates its row (a benchmark of a failure is not
a benchmark).
"""

import os
import statistics
import time


def spawn(argv, env):
    """fork + exec ``argv`` (a full path: no PATH search) with stdio on /dev/null; returns the child's PID."""
    pid = os.fork()
    if pid == 0:
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid


class Command:
    def __init__(self, argv, env=None, expect=(0,)):
        self.argv = list(argv)
        self.env = dict(env) if env is not None else dict(os.environ)
        self.expect = tuple(expect)

    def run_once(self):
        """(wall seconds, cpu seconds, exit code) of one run."""
        started = time.monotonic()
        pid = spawn(self.argv, self.env)
        _, status, usage = os.wait4(pid, 0)
        wall = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        return wall, usage.ru_utime + usage.ru_stime, code


class Comparison:
    """One row: ``a`` (pyra) against ``b`` (the anchor), with the goal for the ratio A/B (lower is better)."""

    def __init__(self, title, a, b, goal=None, label_a="pyra", label_b="anchor", runs=None, warmup=None):
        self.title = title
        self.a = a
        self.b = b
        self.goal = goal
        self.label_a = label_a
        self.label_b = label_b
        self.runs = runs  # a row whose one run takes seconds sets fewer than the table's --runs
        self.warmup = warmup


class Note:
    """A measured line below the table that is not an A/B timing (e.g. a peak count): ``measure()`` -> text."""

    def __init__(self, title, measure):
        self.title = title
        self.measure = measure


class Result:
    def __init__(self, comparison, a_runs, b_runs, error=None):
        self.comparison = comparison
        self.a_runs = a_runs
        self.b_runs = b_runs
        self.error = error

    @staticmethod
    def _median(runs, index):
        return statistics.median(r[index] for r in runs) if runs else float("nan")

    @property
    def a_wall(self):
        return self._median(self.a_runs, 0)

    @property
    def b_wall(self):
        return self._median(self.b_runs, 0)

    @property
    def a_cpu(self):
        return self._median(self.a_runs, 1)

    @property
    def b_cpu(self):
        return self._median(self.b_runs, 1)

    @property
    def wall_ratio(self):
        return self.a_wall / self.b_wall if self.b_wall else float("nan")

    @property
    def cpu_ratio(self):
        return self.a_cpu / self.b_cpu if self.b_cpu else float("nan")

    @property
    def meets_goal(self):
        goal = self.comparison.goal
        if goal is None or self.error:
            return None
        return self.wall_ratio <= goal and self.cpu_ratio <= goal


def measure(comparison, runs=15, warmup=2):
    """Run both commands ``runs`` times each, interleaved, after ``warmup`` untimed runs of each (the
    comparison's own counts win)."""
    runs = comparison.runs or runs
    warmup = comparison.warmup if comparison.warmup is not None else warmup
    for _ in range(warmup):
        comparison.a.run_once()
        comparison.b.run_once()
    a_runs, b_runs = [], []
    for _ in range(runs):
        for command, sink in ((comparison.a, a_runs), (comparison.b, b_runs)):
            wall, cpu, code = command.run_once()
            if code not in command.expect:
                return Result(comparison, a_runs, b_runs,
                              error="%s exited %d (expected %s)" % (command.argv[0], code, command.expect))
            sink.append((wall, cpu, code))
    return Result(comparison, a_runs, b_runs)


def format_table(results):
    head = "%-58s %9s %9s %7s %9s %9s %7s %6s %s" % (
        "comparison (A = pyra, B = anchor)", "A wall", "B wall", "wall", "A cpu", "B cpu", "cpu", "goal", "")
    lines = [head, "-" * len(head)]
    for r in results:
        if r.error:
            lines.append("%-58s  ERROR: %s" % (r.comparison.title[:58], r.error))
            continue
        goal = r.comparison.goal
        verdict = {None: "", True: "ok", False: "MISSED"}[r.meets_goal]
        lines.append("%-58s %7.1fms %7.1fms %6.2fx %7.1fms %7.1fms %6.2fx %6s %s" % (
            r.comparison.title[:58], r.a_wall * 1000, r.b_wall * 1000, r.wall_ratio, r.a_cpu * 1000,
            r.b_cpu * 1000, r.cpu_ratio, "%.2fx" % goal if goal else "-", verdict))
    return "\n".join(lines)
