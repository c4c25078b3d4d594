"""Fixtures for the VServer root tests: a simulator rig per test, the bridge removed at the end."""
import os
import re

import pytest

from lab.rigs import vserver_rig


@pytest.fixture(scope="session")
def vs_bridge():
    if os.geteuid() != 0:
        pytest.fail("the VServer simulator tests need root (namespaces, ip addr)")
    yield vserver_rig.ensure_bridge()
    vserver_rig.remove_bridge()


@pytest.fixture
def rig(request, vs_bridge):
    if os.geteuid() != 0:
        pytest.fail("the VServer simulator tests need root (namespaces, ip addr)")
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    r = vserver_rig.Rig(tag)
    yield r
    r.cleanup()
