"""The distro's ocf-tester passes on TransientDomain with a real guest (run "on" the node, as an admin would)."""

import subprocess

import pytest

import harness
from lab.rigs import libvirt_node as L

pytestmark = [pytest.mark.root, pytest.mark.qemu]


def test_ocf_tester_passes_on_a_real_guest(node, guests, tmp_path):
    g = guests.xml()
    rsctmp = tmp_path / "rsctmp"
    rsctmp.mkdir()
    argv = node.ns_prefix() + ["/usr/sbin/ocf-tester", "-n", "td-ocft", "-o", "config=" + g["config"],
                               "-o", "shutdown_mode=acpi", harness.agent_path("TransientDomain")]
    env = {"PATH": harness.DEFAULT_PATH, "LC_ALL": "C", "HA_RSCTMP": str(rsctmp)}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "passed all tests" in out, out
    assert node.state(g["name"]) is None and not L.qemu_pids(g["uuid"])
    assert g["console"].read_text().count("got ack") == 2                # two real boots (the third start is a no-op)
