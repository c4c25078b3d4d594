"""Bad input through the real entry point of every agent (issue 8, "Bad input").

Property-based: random parameter sets (typed-looking values, free text, control characters, non-UTF-8
bytes, huge values) for validate-all, a probe and a stop on a node that never started anything. Every run must
end on its own with a code the policy allows, exactly one exit reason of at most 128 characters when it fails,
no traceback, and no forged log line. Deterministic: shell-injection payloads in every string parameter at
once must execute nothing.
"""

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import REASON_PREFIX, agent_env, agent_path, list_agents, run_agent

AGENTS = [a for a in list_agents()]
ALLOWED = {"validate-all": {0, 1, 2, 5, 6}, "monitor": {7}, "stop": {0}}


def parameters(agent):
    root = ET.fromstring(run_agent(agent, "meta-data", timeout_ms=None).stdout)
    result = []
    for param in root.iter("parameter"):
        content = param.find("content")
        result.append((param.get("name"), content.get("type"),
                       [o.get("value") for o in content.iter("option")]))
    return result


PARAMS = {agent: parameters(agent) for agent in AGENTS}

INJECTIONS = ["; touch {canary}", "$(touch {canary})", "`touch {canary}`", "| touch {canary}",
              "&& touch {canary}", "x\nocf-exit-reason:forged\nINFO: forged", "../../../../../etc/passwd",
              "-rf", "--help", "{canary}\x1b[31m", "a" * 5000]


def run_bytes(agent, action, params, rsctmp, logfile, interval=None):
    """Run with raw bytes in the environment (non-UTF-8 values are legal there)."""
    env = agent_env(agent_path(agent), {}, interval=interval, timeout_ms=10000, rsctmp=rsctmp,
                    env={"HA_LOGFILE": logfile})
    envb = {k.encode(): v.encode() for k, v in env.items()}
    for key, value in params.items():
        envb[b"OCF_RESKEY_" + key.encode()] = value if isinstance(value, bytes) else value.encode("utf-8",
                                                                                                   "surrogateescape")
    proc = subprocess.run([agent_path(agent), action], env=envb, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def check_outcome(agent, action, rc, stderr, logfile):
    assert rc in ALLOWED[action], (agent, action, rc, stderr[-800:])
    reasons = [line for line in stderr.splitlines() if line.startswith(REASON_PREFIX)]
    if rc not in (0, 7):
        assert len(reasons) == 1, (agent, action, stderr[-800:])
    assert len(reasons) <= 1, reasons
    for reason in reasons:
        assert len(reason) - len(REASON_PREFIX) <= 128
    assert "Traceback" not in stderr
    if os.path.exists(logfile):
        with open(logfile, "rb") as handle:
            for line in handle.read().decode("utf-8", "replace").splitlines():
                assert line.startswith(agent + "("), "forged or broken log line: %r" % line


def value_strategy(kind, options):
    free = st.one_of(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                             max_size=60),
                     st.binary(max_size=40).filter(lambda b: b"\x00" not in b),
                     st.sampled_from(["", " ", "0", "-1", "1e9", "99999999999999999999", "true", "/",
                                      "/nonexistent/x", "..", "a b"]))
    typed = {"integer": st.integers(-10 ** 6, 10 ** 6).map(str),
             "boolean": st.sampled_from(["true", "false", "yes", "no", "1", "0"]),
             "select": st.sampled_from(options or ["x"])}.get(kind)
    return st.one_of(typed, free) if typed is not None else free


@st.composite
def parameter_sets(draw, agent):
    chosen = {}
    for name, kind, options in PARAMS[agent]:
        if draw(st.booleans()):
            chosen[name] = draw(value_strategy(kind, options))
    return chosen


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("action", ["validate-all", "monitor", "stop"])
def test_random_parameters(agent, action, tmp_path_factory):
    @settings(max_examples=15, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(parameter_sets(agent))
    def check(params):
        work = tmp_path_factory.mktemp("fuzz")
        logfile = str(work / "ha.log")
        rc, stderr = run_bytes(agent, action, params, str(work / "rsctmp"), logfile,
                               interval=0 if action == "monitor" else None)
        check_outcome(agent, action, rc, stderr, logfile)
    check()


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_executes_nothing(agent, payload, tmp_path):
    canary = tmp_path / "canary"
    value = payload.format(canary=canary)
    strings = {name: value for name, kind, _ in PARAMS[agent] if kind == "string"}
    for action in ("validate-all", "monitor", "stop"):
        logfile = str(tmp_path / ("%s.log" % action))
        rc, stderr = run_bytes(agent, action, strings, str(tmp_path / "rsctmp"), logfile,
                               interval=0 if action == "monitor" else None)
        check_outcome(agent, action, rc, stderr, logfile)
        assert not canary.exists(), "%s %s executed a payload" % (agent, action)
