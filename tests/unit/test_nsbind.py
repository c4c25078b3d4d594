"""lab/nsbind.py: an unshare refused by the kernel's namespace-id check is retried pinned to each CPU."""

import os
from types import SimpleNamespace

from lab import nsbind

REFUSED = "unshare: mount /proc/96/ns/mnt on /run/x/n1.mnt failed: Invalid argument\n"
ARGV = ["nsenter", "--net=/run/netns/n1", "unshare", "--mount=/run/x/n1.mnt", "--uts=/run/x/n1.uts",
        "--propagation", "private", "/usr/bin/python3", "lab.py", "_inside", "n1"]


def test_only_the_namespace_id_refusal_counts():
    assert nsbind.refused(REFUSED)
    assert not nsbind.refused("unshare: cannot change root filesystem propagation: Invalid argument")
    assert not nsbind.refused("")
    assert not nsbind.refused(None)


def test_bound_files_are_the_unshare_options_not_nsenter_s():
    assert nsbind.bound_files(ARGV) == ["/run/x/n1.mnt", "/run/x/n1.uts"]
    assert nsbind.bound_files(["unshare", "--mount=/m", "--", "sh", "--uts=/not-an-option"]) == ["/m"]


def test_pinned_pins_unshare_and_gives_the_command_every_cpu_back():
    everyone = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    assert nsbind.pinned(ARGV, 1) == (ARGV[:2] + ["taskset", "-c", "1", "unshare"] + ARGV[3:7]
                                      + ["taskset", "-c", everyone] + ARGV[7:])
    argv = ["unshare", "--mount=/m", "--propagation", "private", "--", "/bin/sh", "-c", "x"]
    assert nsbind.pinned(argv, 0) == (["taskset", "-c", "0", "unshare", "--mount=/m", "--propagation", "private",
                                       "--", "taskset", "-c", everyone, "/bin/sh", "-c", "x"])


def test_run_retries_refusals_on_each_cpu_then_stops(mocker):
    released = mocker.patch.object(nsbind, "release")
    seen = []

    def runner(answers):
        def run(argv):
            seen.append(argv)
            return SimpleNamespace(returncode=1 if answers else 0, stderr=answers.pop(0) if answers else "")
        return run

    result = nsbind.run(ARGV, runner([REFUSED]))
    assert result.returncode == 0 and len(seen) == 2 and seen[1][2:4] == ["taskset", "-c"]
    assert released.call_count == 1
    seen.clear()
    result = nsbind.run(ARGV, runner(["some other failure"]))
    assert result.returncode == 1 and len(seen) == 1          # not the kernel's refusal: no retry
    seen.clear()
    cpus = len(os.sched_getaffinity(0))
    result = nsbind.run(ARGV, runner([REFUSED] * (cpus + 5)))
    assert result.returncode == 1 and len(seen) == cpus + 1   # as given, then once per CPU
