"""The distro's ocf-tester passes on ocf:pyra:ManageVE for both runtimes (vzctl simulator, real LXC)."""
import pytest

from fakes.vzctl.simrig import VZCTL, VzSim
from harness import ocf_tester
from lab.rigs import lxc_ve

pytestmark = pytest.mark.root


@pytest.mark.parametrize("flavor", ["legacy", "vz7"])
def test_ocf_tester_vzctl(tmp_path, flavor):
    sim = VzSim(tmp_path / "vz", flavor)
    try:
        sim.create("101")
        env = dict(sim.env, HA_RSCTMP=str(tmp_path / "rsctmp"))
        rc, out = ocf_tester("ManageVE", {"veid": "101", "vzctl": VZCTL, "dumpdir": str(tmp_path)},
                             name="ve-ocft", env=env)
        assert rc == 0, out
        assert "passed all tests" in out
        assert sim.state("101") == "down"
        assert any(c.startswith("start 101 --wait") for c in sim.calls())
    finally:
        sim.cleanup()


@pytest.mark.lxc
def test_ocf_tester_lxc(tmp_path):
    name = "pyra-ve-ocft"
    lxc_ve.make_container(name, force=True)
    try:
        # default parameters (migration=checkpoint): passes whatever CRIU this node has
        rc, out = ocf_tester("ManageVE", {"veid": name, "runtime": "lxc", "lxc_path": str(lxc_ve.LXCPATH)},
                             name="ve-ocft-lxc", env={"HA_RSCTMP": str(tmp_path / "rsctmp")})
        assert rc == 0, out
        assert "passed all tests" in out
        # (ocf-tester ends with migrate_to on a stopped resource, then migrate_from; destroy() below
        # stops whatever that left)
    finally:
        lxc_ve.destroy(name)
