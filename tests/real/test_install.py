"""`make install` / `make uninstall`: agents run exactly as Pacemaker runs them, with the system python."""

import os
import subprocess

import pytest

from harness import REPO, list_agents, ocf_tester

pytestmark = pytest.mark.root

OCFDIR = "/usr/lib/ocf/resource.d/pyra"
PYDIR = "/usr/lib/python3/dist-packages/pyra"


def make(*args, **kw):
    return subprocess.run(["make", "-C", REPO, "--no-print-directory"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300, **kw)


def test_install_and_uninstall_into_destdir(tmp_path):
    dest = str(tmp_path / "root")
    result = make("install", "DESTDIR=" + dest)
    assert result.returncode == 0, result.stdout.decode()
    for agent in list_agents():
        path = dest + OCFDIR + "/" + agent
        assert os.access(path, os.X_OK)
        assert os.path.isfile(dest + "/usr/share/man/man7/ocf_pyra_%s.7" % agent)
    assert os.path.isfile(dest + PYDIR + "/ocf/agent.py")
    assert any(n.endswith(".pyc") for n in os.listdir(dest + PYDIR + "/ocf/__pycache__"))
    result = make("uninstall", "DESTDIR=" + dest)
    assert result.returncode == 0, result.stdout.decode()
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files]
    assert leftovers == []


@pytest.fixture(scope="module")
def installed():
    was_installed = os.path.isdir(PYDIR)
    result = make("install")
    assert result.returncode == 0, result.stdout.decode()
    yield
    if not was_installed:
        make("uninstall")


@pytest.mark.parametrize("agent", list_agents())
def test_installed_agent_runs_with_a_bare_environment(installed, agent, tmp_path):
    base = ["env", "-i", "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=probe-" + agent.lower(),
            "HA_RSCTMP=" + str(tmp_path), "OCF_RESKEY_CRM_meta_interval=0"]
    meta = subprocess.run(base + [OCFDIR + "/" + agent, "meta-data"], stdout=subprocess.PIPE, timeout=30)
    assert meta.returncode == 0 and meta.stdout.startswith(b"<?xml")
    # A probe with no parameters at all, on a node that has nothing of this resource: 7, never 5/6/1.
    probe = subprocess.run(base + [OCFDIR + "/" + agent, "monitor"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    assert probe.returncode == 7, probe.stderr.decode()
    # The library it imported is the installed one, not the source tree.
    where = subprocess.run(["env", "-i", "/usr/bin/python3", "-c", "import pyra; print(pyra.__file__)"],
                           stdout=subprocess.PIPE, timeout=30, cwd="/")
    assert where.stdout.decode().strip() == PYDIR + "/__init__.py"


def test_ocf_tester_passes_on_the_installed_example(installed, tmp_path):
    rc, output = ocf_tester(OCFDIR + "/PyraExample", {"state_dir": str(tmp_path / "state")},
                            env={"HA_RSCTMP": str(tmp_path / "rsctmp")})
    assert rc == 0, output
    assert "passed all tests" in output
