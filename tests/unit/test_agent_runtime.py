"""The dispatcher, end to end through a real agent process (PyraExample), as Pacemaker runs it."""

import os

import pytest

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
    link.symlink_to(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "lib", "pyra",
                                 "agents", "launch.py"))
    result = run_agent(str(link), "monitor")
    assert result.rc == 5 and "no pyra agent is named NoSuchAgent" in result.exit_reason
