"""The one return-code policy (DESIGN §3, §5)."""

import pytest

from pyra.ocf import codes, policy

P = policy


@pytest.mark.parametrize("condition,action,probe,record,expected", [
    # invalid configuration: fatal only where Pacemaker expects it
    (P.CONFIG_INVALID, "validate-all", False, False, codes.ERR_CONFIGURED),
    (P.CONFIG_INVALID, "start", False, False, codes.ERR_CONFIGURED),
    (P.CONFIG_INVALID, "monitor", True, False, codes.NOT_RUNNING),
    (P.CONFIG_INVALID, "monitor", False, False, codes.ERR_GENERIC),
    (P.CONFIG_INVALID, "stop", False, False, codes.SUCCESS),
    (P.CONFIG_INVALID, "stop", False, True, codes.ERR_GENERIC),
    # environment missing on this node
    (P.ENV_MISSING, "start", False, False, codes.ERR_INSTALLED),
    (P.ENV_MISSING, "validate-all", False, False, codes.ERR_INSTALLED),
    (P.ENV_MISSING, "monitor", True, False, codes.NOT_RUNNING),
    (P.ENV_MISSING, "monitor", True, True, codes.ERR_GENERIC),
    (P.ENV_MISSING, "monitor", False, False, codes.ERR_GENERIC),
    (P.ENV_MISSING, "stop", False, False, codes.SUCCESS),
    (P.ENV_MISSING, "stop", False, True, codes.ERR_GENERIC),
    (P.ENV_MISSING, "migrate_to", False, False, codes.ERR_GENERIC),
    # crash memory
    (P.CRASHED, "monitor", False, True, codes.ERR_GENERIC),
    (P.CRASHED, "monitor", True, True, codes.NOT_RUNNING),
    (P.NOT_RUNNING, "monitor", False, False, codes.NOT_RUNNING),
    (P.NOT_RUNNING, "stop", False, False, codes.SUCCESS),
    (P.DEGRADED, "monitor", False, False, codes.DEGRADED),
    (P.DEGRADED, "start", False, False, codes.SUCCESS),
    (P.FAILED, "stop", False, False, codes.ERR_GENERIC),
    (P.UNIMPLEMENTED, "monitor", False, False, codes.ERR_UNIMPLEMENTED),
])
def test_decide(condition, action, probe, record, expected):
    assert policy.decide(condition, action, probe, record) == expected


def test_six_never_leaves_monitor_or_stop():
    for condition in policy.CONDITIONS:
        for action in ("monitor", "stop", "migrate_to", "migrate_from", "reload-agent"):
            for probe in (False, True):
                for record in (False, True):
                    assert policy.decide(condition, action, probe, record) != codes.ERR_CONFIGURED


@pytest.mark.parametrize("requested,supported,expected", [
    (0, (0, 10, 20), 0), (10, (0, 10, 20), 10), (15, (0, 10, 20), 10), (99, (0, 10, 20), 20),
    (20, (0, 10), 10), (5, (0,), 0)])
def test_check_level_falls_back_to_next_lower(requested, supported, expected):
    assert policy.normalise_check_level(requested, supported) == expected


def test_codes_match_the_distro_ocf_py():
    import importlib.util
    spec = importlib.util.spec_from_file_location("distro_ocf", "/usr/lib/ocf/lib/heartbeat/ocf.py")
    distro = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(distro)
    assert (codes.SUCCESS, codes.ERR_GENERIC, codes.ERR_ARGS, codes.ERR_UNIMPLEMENTED, codes.ERR_PERM,
            codes.ERR_INSTALLED, codes.ERR_CONFIGURED, codes.NOT_RUNNING, codes.RUNNING_PROMOTED,
            codes.FAILED_PROMOTED) == (
        distro.OCF_SUCCESS, distro.OCF_ERR_GENERIC, distro.OCF_ERR_ARGS, distro.OCF_ERR_UNIMPLEMENTED,
        distro.OCF_ERR_PERM, distro.OCF_ERR_INSTALLED, distro.OCF_ERR_CONFIGURED, distro.OCF_NOT_RUNNING,
        distro.OCF_RUNNING_MASTER, distro.OCF_FAILED_MASTER)
