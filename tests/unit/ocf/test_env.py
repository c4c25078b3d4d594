"""What the agent reads of Pacemaker's environment: boolean meta attributes as Pacemaker reads them."""

import pytest

from pyra.ocf.env import OcfEnv


@pytest.mark.parametrize("value, expected", [
    (None, False), ("", False), ("false", False), ("0", False), ("no", False), ("maybe", False),
    ("true", True), ("TRUE", True), ("yes", True), ("1", True), ("on", True), (" y ", True),
])
def test_meta_flag(value, expected):
    environ = {} if value is None else {"OCF_RESKEY_CRM_meta_allow_migrate": value}
    assert OcfEnv(environ=environ, argv=["agent", "monitor"]).meta_flag("allow-migrate") is expected
