"""pyra's version number lives in one place, lib/pyra/__init__.py's __version__: the agents' metadata
(<resource-agent version=...>), `pyra --version` and the Debian package (tools/deb.sh writes the changelog from
it at `make deb` time; tests/real/test_package.py checks the built .deb) all show it."""

import os
import re
import subprocess
import tomllib
import xml.etree.ElementTree as ET

import pyra
from harness import REPO, list_agents, run_agent
from pyra.ocf.agent import Agent

# How tools/deb.sh reads the version (sed): the line must keep this shape for the package to get it.
VERSION_LINE = re.compile(r'^__version__ = "([0-9][0-9A-Za-z.+~]*)"$', re.M)


def test_the_version_line_is_what_make_deb_reads():
    with open(os.path.join(REPO, "lib", "pyra", "__init__.py")) as handle:
        found = VERSION_LINE.findall(handle.read())
    assert found == [pyra.__version__]
    with open(os.path.join(REPO, "tools", "deb.sh")) as handle:
        assert "lib/pyra/__init__.py" in handle.read()


def test_the_agent_base_class_carries_the_package_version():
    assert Agent.version == pyra.__version__


def test_every_agent_metadata_shows_the_package_version(rsctmp):
    shown = {}
    for agent in list_agents():
        result = run_agent(agent, "meta-data", rsctmp=rsctmp)
        assert result.rc == 0, result
        shown[agent] = ET.fromstring(result.stdout).get("version")
    wrong = {agent: v for agent, v in shown.items() if v != pyra.__version__}
    assert wrong == {}


def test_pyra_version_shows_the_package_version():
    result = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "sbin", "pyra"), "--version"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, cwd="/")
    assert result.returncode == 0, result.stdout
    assert result.stdout.decode().strip() == "pyra %s" % pyra.__version__


def test_pyproject_reads_the_version_from_the_library():
    # setuptools takes it from pyra.__version__: no second copy to drift
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pyra.__version__"}


def test_debian_changelog_is_not_kept_in_the_tree():
    # the package version comes from __version__ at `make deb` time, never from a second copy
    assert not os.path.exists(os.path.join(REPO, "debian", "changelog"))
    assert os.path.isfile(os.path.join(REPO, "debian", "control"))
