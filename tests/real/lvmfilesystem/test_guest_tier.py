"""LVMFilesystem guest tier: the real agent against REAL device-mapper, lvmlockd and sanlock, in QEMU guests
(TCG software emulation; a stock Debian kernel; the host's own userland read-only over 9p). The guests are the
lab's (lab/rigs/storage_guest/: ``build.py`` kernel + initramfs, ``guest.py`` boot, ``guest_init.py`` the
guest's PID 1); the scenarios they run are ``guest_scenarios.py`` beside this file (one JSON result each).

One boot of a single guest runs the single-node scenarios; two guests sharing two disks run the pair
scenarios (exclusivity under lvmlockd+sanlock and system ID, take-over from a crashed system-ID owner).
Each scenario is one test here, so each can fail on its own with the checks that failed.
"""
import os
import shutil

import pytest

from . import guest_scenarios as driver
from lab.rigs.storage_guest import guest

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.slow]

WORK = guest.WORK / ("tier-%d" % os.getpid())
DRIVER = os.path.abspath(driver.__file__)
PAIR_A = ("pair_setup", "pair_a_holds", "pair_a_releases")
PAIR_B = ("pair_setup", "pair_b_refused", "pair_b_takes", "pair_b_takeover")


def _clean_stale():
    if not guest.WORK.exists():
        return
    for stale in guest.WORK.glob("tier-*"):
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and not os.path.exists("/proc/" + pid):
            shutil.rmtree(stale, ignore_errors=True)


class Run:
    """What a boot left: the guests and their results by node."""

    def __init__(self, out, guests):
        self.out = out
        self.guests = guests
        self.results = {}

    def collect(self):
        for node in self.guests:
            self.results[node] = guest.results(self.out, node)

    def check(self, node, name):
        g = self.guests[node]
        res = self.results[node].get(name)
        if res is None:
            pytest.fail("scenario %s did not run on %s (job rc %s, %.0fs)\n--- driver.log\n%s\n--- console\n%s" % (
                name, node, g.rc(), g.wall(), g.tail(), g.tail("console.log", 15)))
        assert not res["error"], "%s on %s raised:\n%s" % (name, node, res["error"])
        assert res["checks"], "%s on %s checked nothing" % (name, node)
        bad = [c for c in res["checks"] if not c["ok"]]
        assert not bad, "%s on %s: %d check(s) failed:\n%s" % (
            name, node, len(bad), "\n".join("- %(what)s: got %(got)r, want %(want)r" % c
                                           + ("\n  reason: %s\n  stderr: %s" % (c.get("reason"), c.get("stderr"))
                                              if "stderr" in c else "") for c in bad))


def _timeline(run):
    for node, results in run.results.items():
        print("%s: %s" % (node, ", ".join("%s %.0fs" % (name, res.get("elapsed", 0)) for name, res in results.items())))


def _finish(run, keep):
    """Stop what is left, delete the disk images; keep the logs (out/<node>/) only after a failure or when
    PYRA_LVG_KEEP is set."""
    keep = keep or bool(os.environ.get("PYRA_LVG_KEEP"))
    for g in run.guests.values():
        g.kill()
    for img in run.out.parent.glob("*.img"):
        img.unlink()
    if not keep:
        shutil.rmtree(run.out.parent, ignore_errors=True)
        try:
            WORK.rmdir()  # the last fixture to finish leaves nothing behind
        except OSError:
            pass


@pytest.fixture(scope="module")
def single():
    _clean_stale()
    base = WORK / "single"
    shutil.rmtree(base, ignore_errors=True)
    disks = [guest.image(base / name, size) for name, size in (("vda.img", "600M"), ("vdb.img", "64M"),
                                                                ("vdc.img", "64M"), ("vdd.img", "64M"))]
    out = base / "out"
    out.mkdir(parents=True)
    g = guest.Guest("single", out, ["/usr/bin/python3", DRIVER, "single"], disks=disks, mem=1536, smp=2,
                    timeout=900)
    run = Run(out, {"single": g})
    try:
        g.start()
        g.wait()
        run.collect()
        print("single guest: %.0fs wall, job rc %s" % (g.wall(), g.rc()))
        _timeline(run)
        yield run
    finally:
        _finish(run, keep=g.rc() != 0)


@pytest.fixture(scope="module")
def pair():
    _clean_stale()
    base = WORK / "pair"
    shutil.rmtree(base, ignore_errors=True)
    shared = [guest.image(base / "san0.img", "512M"), guest.image(base / "san1.img", "32M")]
    out = base / "out"
    out.mkdir(parents=True)
    guests = {node: guest.Guest(node, out, ["/usr/bin/python3", DRIVER, node], shared=shared, mem=1024, smp=1,
                                timeout=700) for node in ("nodeA", "nodeB")}
    run = Run(out, guests)
    try:
        for g in guests.values():
            g.start()
        a, b = guests["nodeA"], guests["nodeB"]
        a.wait()
        (out / "sync-nodeA-dead").write_text("qemu of nodeA exited\n")  # the "fencing" confirmation
        b.wait()
        run.collect()
        print("pair: nodeA %.0fs, nodeB %.0fs wall" % (a.wall(), b.wall()))
        _timeline(run)
        yield run
    finally:
        _finish(run, keep=any(g.rc() not in (0, None) for g in guests.values()) or guests["nodeB"].rc() is None)


@pytest.mark.parametrize("name", driver.SINGLE)
def test_single(single, name):
    single.check("single", name)


@pytest.mark.parametrize("node,name", [("nodeA", n) for n in PAIR_A] + [("nodeB", n) for n in PAIR_B])
def test_pair(pair, node, name):
    pair.check(node, name)
