"""The chaos soak as a test: 10 minutes of random overlapping faults on the session's 3-node cluster, with a
fixed seed list (`make soak` runs it for an hour with any seed; lab/soak/engine.py says what is checked).

Opt-in (PYRA_TEST_SOAK=1) until `make soak` has run clean for an hour here (issue 15): a soak that is not yet
trusted must not decide whether CI lands.

Every invariant must hold: never two running copies of a guest or container, never an LV active on two nodes,
every acknowledged record on disk and intact, convergence after each episode within the stated bound, fencing
when and only when the policy requires it. On a violation the run's logs are kept under /var/tmp/pyra-soak and
the failure names the seed to replay.
"""
import os

import pytest

from lab.soak import engine, rig

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.qemu, pytest.mark.lxc,
              pytest.mark.slow]

if not os.environ.get("PYRA_TEST_SOAK"):
    pytest.skip("the soak runs in make test once it is trusted (PYRA_TEST_SOAK=1 runs it now)",
                allow_module_level=True)

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
            if soak.violation:
                break
    finally:
        rig.teardown(cluster, san)
    for soak in results:
        assert soak.violation is None, "seed %s: %s (logs in %s)" % (soak.seed, soak.violation, soak.run_dir)
        assert soak.episodes, "seed %s ran no episode" % soak.seed
    assert rig.instances() == {"vm-disk": [], "vm-mig": [], "ct": []}
