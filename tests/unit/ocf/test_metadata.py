"""Metadata of every agent: valid OCF 1.0 (DTD, for ocf-tester) and 1.1 (RelaxNG), golden files current,
every text escaped, no side effects."""

import os
import subprocess

import pytest

from harness import REPO, list_agents, run_agent
from pyra.ocf import checks
from pyra.ocf.agent import Action, Agent
from pyra.ocf.metadata import escape, render
from pyra.ocf.params import BOOLEAN, TIME, Param, Schema

RNG = os.path.join(REPO, "tests", "schemas", "ra-api-1.1.rng")
DTD_DIR = "/usr/share/resource-agents"


def xmllint(args, text, cwd=None):
    return subprocess.run(["xmllint", "--noout"] + args + ["-"], input=text.encode(), cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)


def meta(agent, version):
    return run_agent(agent, "meta-data", timeout_ms=None, ra_version=version)


@pytest.mark.parametrize("agent", list_agents())
def test_one_zero_output_is_valid_against_the_dtd(agent):
    result = meta(agent, None)
    assert result.rc == 0
    assert "<version>1.0</version>" in result.stdout and "<action name=\"reload-agent\"" not in result.stdout
    check = xmllint(["--valid"], result.stdout, cwd=DTD_DIR)
    assert check.returncode == 0, check.stdout.decode()


@pytest.mark.parametrize("agent", list_agents())
def test_one_one_output_is_valid_against_the_rng(agent):
    result = meta(agent, "1.1")
    assert result.rc == 0 and "<version>1.1</version>" in result.stdout
    check = xmllint(["--relaxng", RNG], result.stdout)
    assert check.returncode == 0, check.stdout.decode()


@pytest.mark.parametrize("agent", list_agents())
def test_agent_version_and_timeouts_have_units(agent):
    text = meta(agent, "1.1").stdout
    import xml.etree.ElementTree as ET
    root = ET.fromstring(text)
    assert root.get("version") and root.get("version") != "1.1"
    for action in root.iter("action"):
        assert action.get("timeout").endswith("s"), action.attrib
        if action.get("interval"):
            assert action.get("interval").endswith("s")


def test_golden_metadata_is_current():
    result = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tools", "metadata.py"), "check"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert result.returncode == 0, result.stdout.decode()
    goldens = sorted(n[:-4] for n in os.listdir(os.path.join(REPO, "metadata")) if n.endswith(".xml"))
    assert goldens == list_agents()


class Tricky(Agent):
    name = "Tricky"
    version = "1.0"
    shortdesc = "A <shortdesc> & \"quotes\""
    longdesc = "Text with <tags>, & ampersands, \x01 control chars and ]]> endings"
    schema = Schema(
        Param("p1", default='a"b<c>&d', shortdesc="<x>", longdesc="& more"),
        Param("mode", choices=("a&b", "c"), default="c", reloadable=True),
        Param("old", deprecated="p1"),
        Param("wait", type=TIME, default=1.5),
        Param("flag", type=BOOLEAN, default=True, unique=True, checks=[checks.single_line]),
    )
    actions = (Action("start", 10), Action("stop", 10), Action("monitor", 10, interval=5),
               Action("reload-agent", 10))


@pytest.mark.parametrize("version", [(1, 0), (1, 1)])
def test_everything_is_escaped(version):
    text = render(Tricky, version)
    args = ["--relaxng", RNG] if version == (1, 1) else ["--valid"]
    check = xmllint(args, text, cwd=DTD_DIR)
    assert check.returncode == 0, check.stdout.decode() + text
    assert 'default="a&quot;b&lt;c&gt;&amp;d"' in text
    assert "\x01" not in text


def test_one_one_features_and_one_zero_fallbacks():
    v11 = render(Tricky, (1, 1))
    assert '<content type="select" default="c">' in v11 and '<option value="a&amp;b" />' in v11
    assert 'reloadable="1"' in v11 and '<replaced-with name="p1" />' in v11
    assert '<action name="reload-agent"' in v11 and 'default="1500ms"' in v11
    v10 = render(Tricky, (1, 0))
    assert "Allowed values: a&amp;b, c." in v10 and "Deprecated: use p1 instead." in v10
    assert "<content type=\"time\" default=\"1500ms\" />" in v10 and "<action name=\"reload-agent\"" not in v10


def test_escape():
    assert escape('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
    assert escape("ok\x00\x08\tline") == "ok\tline"


@pytest.mark.root
@pytest.mark.parametrize("agent", list_agents())
def test_meta_data_as_nobody_touches_nothing(agent, tmp_path):
    os.chmod(tmp_path, 0o777)
    probe = tmp_path / "rsctmp"
    environ = {"PATH": "/usr/bin:/bin", "HA_RSCTMP": str(probe), "HA_LOGFILE": str(tmp_path / "log"),
               "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1"}
    result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             os.path.join(REPO, "agents", agent), "meta-data"],
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith(b"<?xml"), result.stderr
    assert result.stderr == b""
    assert sorted(os.listdir(tmp_path)) == []  # no state dir, no log file, nothing
