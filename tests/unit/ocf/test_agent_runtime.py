"""The dispatcher, end to end through a real agent process (PyraExample), as Pacemaker runs it."""

import os

import pytest

import harness
from harness import list_agents, run_agent

A = "PyraExample"


@pytest.fixture
def params(tmp_path):
    return {"state_dir": str(tmp_path / "state")}


def test_lifecycle_and_crash_memory(rsctmp, params):
    def mon(**kw):
        return run_agent(A, "monitor", params, interval=10000, rsctmp=rsctmp, **kw).rc
    assert mon() == 7
    assert run_agent(A, "start", params, rsctmp=rsctmp).rc == 0
    assert run_agent(A, "start", params, rsctmp=rsctmp).rc == 0
    assert mon() == 0
    os.unlink(os.path.join(params["state_dir"], "test-pyraexample.running"))  # the resource "crashes"
    crashed = run_agent(A, "monitor", params, interval=10000, rsctmp=rsctmp)
    assert crashed.rc == 1 and "started here and not stopped" in crashed.exit_reason
    assert run_agent(A, "monitor", params, interval=0, rsctmp=rsctmp).rc == 7  # probe: not running
    assert run_agent(A, "stop", params, rsctmp=rsctmp).rc == 0
    assert mon() == 7
    assert run_agent(A, "stop", params, rsctmp=rsctmp).rc == 0


@pytest.mark.parametrize("action", ["bogus", "promote", "reload"])
def test_unknown_actions_are_3_with_a_reason(rsctmp, params, action):
    result = run_agent(A, action, params, rsctmp=rsctmp)
    assert result.rc == 3 and len(result.exit_reasons) == 1 and action in result.exit_reason


def test_missing_action_is_3(rsctmp):
    result = run_agent(A, None, rsctmp=rsctmp)
    assert result.rc == 3 and "usage" in result.exit_reason


def test_help(rsctmp):
    result = run_agent(A, "--help", rsctmp=rsctmp)
    assert result.rc == 0 and "usage: PyraExample" in result.stdout


def test_bad_value_is_6_from_validate_and_start_only(rsctmp, params):
    bad = dict(params, start_delay="forever")
    for action in ("validate-all", "start"):
        result = run_agent(A, action, bad, rsctmp=rsctmp)
        assert result.rc == 6, result
        assert result.exit_reasons == ["parameter 'start_delay' must be a duration such as 90, 90s, 500ms or "
                                       "2min (got 'forever')"]
    assert run_agent(A, "monitor", bad, interval=0, rsctmp=rsctmp).rc == 7
    assert run_agent(A, "monitor", bad, interval=10000, rsctmp=rsctmp).rc == 7
    assert run_agent(A, "stop", bad, rsctmp=rsctmp).rc == 0


def test_missing_config_file(rsctmp, params, tmp_path):
    cfg = dict(params, config=str(tmp_path / "absent.conf"))
    assert run_agent(A, "validate-all", cfg, rsctmp=rsctmp).rc == 5
    assert run_agent(A, "start", cfg, rsctmp=rsctmp).rc == 5
    assert run_agent(A, "monitor", cfg, interval=0, rsctmp=rsctmp).rc == 7
    assert run_agent(A, "stop", cfg, rsctmp=rsctmp).rc == 0


def test_probe_without_config_but_with_record_is_not_stopped(rsctmp, params, tmp_path):
    cfg_path = tmp_path / "my.conf"
    cfg_path.write_text("x")
    cfg = dict(params, config=str(cfg_path))
    assert run_agent(A, "start", cfg, rsctmp=rsctmp).rc == 0
    cfg_path.unlink()
    assert run_agent(A, "monitor", cfg, interval=0, rsctmp=rsctmp).rc == 0  # found by its record
    assert run_agent(A, "stop", cfg, rsctmp=rsctmp).rc == 0


def test_failing_stop_is_1_with_one_reason(rsctmp, params):
    result = run_agent(A, "stop", dict(params, fail_stop="true"), rsctmp=rsctmp)
    assert result.rc == 1 and result.exit_reasons == ["stop fails because fail_stop is set"]


def test_deadline_comes_from_meta_timeout(rsctmp, params):
    result = run_agent(A, "start", dict(params, start_delay="30s"), rsctmp=rsctmp, timeout_ms=3000)
    assert result.rc == 6 and "does not fit" in result.exit_reason and result.elapsed < 2
    result = run_agent(A, "start", dict(params, start_delay="2.5s"), rsctmp=rsctmp, timeout_ms=3000)
    # 3 s timeout - 0.5 s margin leaves 2.5 s: the agent gives up with a reason before Pacemaker would kill it.
    assert result.rc == 6 or (result.rc == 1 and not result.killed and result.elapsed < 3)


def test_check_level_is_read_without_prefix_and_unknown_falls_back(rsctmp, params):
    assert run_agent(A, "monitor", params, interval=10000, check_level=37, rsctmp=rsctmp).rc == 7


def test_summary_line_and_logfile(rsctmp, params, tmp_path):
    logfile = tmp_path / "ha.log"
    run_agent(A, "start", params, rsctmp=rsctmp, env={"HA_LOGFILE": str(logfile)})
    text = logfile.read_text()
    assert "start: OCF_SUCCESS in " in text and " ms" in text


def test_internal_errors_never_print_a_traceback(rsctmp, params):
    # state_dir under a file: makedirs raises NotADirectoryError deep inside the agent
    result = run_agent(A, "start", {"state_dir": "/etc/hostname/sub"}, rsctmp=rsctmp)
    assert result.rc == 1 and "Traceback" not in result.stderr
    assert result.exit_reasons and "internal error in start" in result.exit_reason


def test_reload_agent_and_migration(rsctmp, params):
    assert run_agent(A, "start", params, rsctmp=rsctmp).rc == 0
    assert run_agent(A, "reload-agent", dict(params, fake="new"), rsctmp=rsctmp).rc == 0
    marker = os.path.join(params["state_dir"], "test-pyraexample.running")
    assert open(marker).read() == "new\n"
    assert run_agent(A, "migrate_to", params, rsctmp=rsctmp, meta={"migrate_target": "n2"}).rc == 0
    assert run_agent(A, "monitor", params, interval=10000, rsctmp=rsctmp).rc == 7  # left, not crashed
    assert run_agent(A, "stop", params, rsctmp=rsctmp).rc == 0


def test_every_agent_answers_meta_data_with_no_environment():
    for agent in list_agents():
        result = run_agent(agent, "meta-data", timeout_ms=None, ra_version=None)
        assert result.rc == 0 and result.stdout.startswith("<?xml"), (agent, result)


class _NeedsConfig:
    """An in-process agent whose monitor/stop would crash without its required parameter."""

    @staticmethod
    def make():
        from pyra.ocf.agent import Action, Agent
        from pyra.ocf.params import Param, Schema

        class NeedsConfig(Agent):
            name = "NeedsConfig"
            schema = Schema(Param("config", required=True))
            actions = (Action("start", 10), Action("stop", 10), Action("monitor", 10, interval=10))
            calls = []

            def start(self, op):
                op.state.record_start({"config": op.params.config})

            def stop(self, op):
                self.calls.append("stop")
                return 0 if op.params.config else 1

            def monitor(self, op):
                self.calls.append("monitor")
                return op.not_running() if op.params.config is None else 0
        return NeedsConfig


@pytest.mark.parametrize("action,interval,expected", [("monitor", "0", 7), ("monitor", None, 7),
                                                      ("monitor", "10000", 1), ("stop", None, 0),
                                                      ("validate-all", None, 6), ("start", None, 6)])
def test_missing_required_parameter_without_record(rsctmp, action, interval, expected, capsys):
    cls = _NeedsConfig.make()
    environ = {"HA_RSCTMP": rsctmp, "HA_LOGFACILITY": "none", "HA_LOGFILE": os.devnull}
    if interval is not None:
        environ["OCF_RESKEY_CRM_meta_interval"] = interval
    assert cls().main(["agent", action], environ) == expected
    assert cls.calls == []  # decided by the runtime, the agent was never asked to guess
    err = capsys.readouterr().err
    assert ("ocf-exit-reason:parameter 'config' is required" in err) == (expected not in (0, 7))


def test_missing_required_parameter_with_record_asks_the_agent(rsctmp):
    cls = _NeedsConfig.make()
    environ = {"HA_RSCTMP": rsctmp, "HA_LOGFACILITY": "none", "HA_LOGFILE": os.devnull,
               "OCF_RESKEY_config": "/etc/x"}
    assert cls().main(["agent", "start"], environ) == 0
    del environ["OCF_RESKEY_config"]
    environ["OCF_RESKEY_CRM_meta_interval"] = "0"
    assert cls().main(["agent", "monitor"], environ) == 7  # the agent decided (probe after crash)
    assert cls.calls == ["monitor"]


def test_every_agent_executable_is_registered_and_vice_versa():
    from pyra.agents import AGENTS
    assert sorted(AGENTS) == list_agents()


def test_unknown_agent_name_is_refused(tmp_path):
    link = tmp_path / "NoSuchAgent"
    link.symlink_to(os.path.join(harness.REPO, "lib", "pyra",
                                 "agents", "launch.py"))
    result = run_agent(str(link), "monitor")
    assert result.rc == 5 and "no pyra agent is named NoSuchAgent" in result.exit_reason


# -- one identity rule, and host errors mapped by the runtime ----------------------------------------------------
def _identified():
    from pyra.agents.base import PyraAgent
    from pyra.ocf.agent import Action
    from pyra.ocf.errors import MissingEnvironment
    from pyra.ocf.params import Param, Schema

    class Identified(PyraAgent):
        name = "Identified"
        schema = Schema(Param("config"), Param("command"))
        actions = (Action("start", 10), Action("stop", 10), Action("monitor", 10, interval=10))
        identity_keys = ("thing",)
        seen = []

        def identify(self, op):
            if not op.params.config:
                raise MissingEnvironment("config not visible here")
            return {"thing": "from-" + op.params.config}

        def start(self, op):
            op.record_start(note="x")
            op.state.update(baseline="7")
            if op.params.command:
                op.run(op.params.command.split(), check=True)

        def stop(self, op):
            self.seen.append(("stop", op.identity()["thing"]))
            op.state.record_stop()

        def monitor(self, op):
            self.seen.append(("monitor", op.identity()["thing"]))
            return 0
    return Identified


def _env(rsctmp, **params):
    environ = {"HA_RSCTMP": rsctmp, "HA_LOGFACILITY": "none", "HA_LOGFILE": os.devnull}
    environ.update({"OCF_RESKEY_" + k: v for k, v in params.items()})
    return environ


def test_identity_comes_from_the_record_while_it_stands(rsctmp):
    cls = _identified()
    assert cls().main(["a", "start"], _env(rsctmp, config="a")) == 0
    # the parameters now point elsewhere (or nowhere): what this node started is what it monitors and stops
    assert cls().main(["a", "monitor"], _env(rsctmp, config="b")) == 0
    assert cls().main(["a", "monitor"], _env(rsctmp)) == 0
    assert cls().main(["a", "stop"], _env(rsctmp)) == 0
    assert cls.seen == [("monitor", "from-a"), ("monitor", "from-a"), ("stop", "from-a")]
    # once stopped cleanly, the parameters speak again, and without them the policy answers
    assert cls().main(["a", "monitor"], _env(rsctmp, config="b")) == 0
    assert cls.seen[-1] == ("monitor", "from-b")
    assert cls().main(["a", "monitor"], dict(_env(rsctmp), OCF_RESKEY_CRM_meta_interval="0")) == 7
    assert cls().main(["a", "stop"], _env(rsctmp)) == 0


def test_a_repeated_start_keeps_what_the_record_noted(rsctmp):
    from pyra.ocf.state import InstanceState
    cls = _identified()
    assert cls().main(["a", "start"], _env(rsctmp, config="a")) == 0
    InstanceState(rsctmp, "Identified", "Identified").update(baseline="9")
    assert cls().main(["a", "start"], _env(rsctmp, config="a")) == 0
    record = InstanceState(rsctmp, "Identified", "Identified").read()
    assert record["id.thing"] == "from-a" and record["note"] == "x" and record["baseline"] == "7"
    assert cls().main(["a", "start"], _env(rsctmp, config="c")) == 0          # another identity: a new record
    assert InstanceState(rsctmp, "Identified", "Identified").read()["id.thing"] == "from-c"


@pytest.mark.parametrize("command,reason", [("/bin/false", "false failed (rc=1)"),
                                            ("/nonexistent/tool", "tool: not found")])
def test_host_errors_become_failures_with_their_words(rsctmp, capsys, command, reason):
    cls = _identified()
    assert cls().main(["a", "start"], _env(rsctmp, config="a", command=command)) == 1
    err = capsys.readouterr().err
    assert "ocf-exit-reason:" + reason in err and "internal error" not in err


def test_no_time_left_for_a_command_is_a_deadline_failure(rsctmp, capsys):
    cls = _identified()
    environ = dict(_env(rsctmp, config="a", command="/bin/true"), OCF_RESKEY_CRM_meta_timeout="500")
    assert cls().main(["a", "start"], environ) == 1
    assert "ocf-exit-reason:start: no time left to run true" in capsys.readouterr().err
