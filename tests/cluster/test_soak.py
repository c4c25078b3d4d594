"""The chaos soak as a test: 10 minutes of random overlapping faults on the session's 3-node cluster, with a
fixed seed list (`make soak` runs it for an hour with any seed; lab/soak/engine.py says what is checked).

Part of `make test` since `make soak` ran clean for an hour here (issue 15); PYRA_TEST_SOAK=0 leaves it out of a
developer's run, PYRA_TEST_SOAK_MINUTES changes its length.

Every invariant must hold: never two running copies of a guest or container, never an LV active on two nodes,
every acknowledged record on disk and intact, convergence after each episode within the stated bound, fencing
when and only when the policy requires it. On a violation the run's logs are kept under /var/tmp/pyra-soak and
the failure names the seed to replay.
"""
import os

import pytest

from lab import clusterops
from lab.soak import engine, rig

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.lxc,
              pytest.mark.slow]

if os.environ.get("PYRA_TEST_SOAK", "1") == "0":
    pytest.skip("PYRA_TEST_SOAK=0: the soak is left out", allow_module_level=True)

MINUTES = float(os.environ.get("PYRA_TEST_SOAK_MINUTES", "10"))
SEEDS = ("1501", "1502")


def test_soak(cluster):
    san = rig.setup(cluster)
    results = []
    try:
        for seed in SEEDS:
            soak = engine.Soak(cluster, seed, MINUTES / len(SEEDS))
            soak.run()
            results.append(soak)
            s = soak.summary()
            worst = max((row["converge_max_s"] for row in s["faults_per_kind"].values()), default=0.0)
            clusterops.record("soak seed %s: %d episodes, %d invariant checks, slowest convergence %.0f s, %s"
                              % (seed, s["episodes"], s["invariant_checks"], worst,
                                 "violation" if soak.violation else "clean"), s["elapsed_s"])
            if soak.violation:
                break
    finally:
        rig.teardown(cluster, san)
    for soak in results:
        assert soak.violation is None, "seed %s: %s (logs in %s)" % (soak.seed, soak.violation, soak.run_dir)
        assert soak.episodes, "seed %s ran no episode" % soak.seed
    assert rig.instances() == {"vm-disk": [], "vm-mig": [], "ct": []}
