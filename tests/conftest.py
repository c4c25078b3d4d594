"""Suite-wide pytest configuration: markers that need root are skipped *with their reason* when not root.

CI runs as root, so nothing is skipped there; a skip is never counted as a pass.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)  # the package `lab` (lab/: rigs, the cluster lab, the dm stand-in)
sys.path.insert(0, os.path.join(REPO, "lib"))
sys.path.insert(0, HERE)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (runs in CI as root)")
    for item in items:
        if any(item.get_closest_marker(m) for m in ("root", "qemu", "netns", "lxc", "cluster")):
            item.add_marker(skip)


@pytest.fixture
def rsctmp(tmp_path):
    """A private HA_RSCTMP for one test."""
    path = tmp_path / "rsctmp"
    path.mkdir()
    return str(path)
