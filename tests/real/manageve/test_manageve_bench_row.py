"""The ManageVE bench row: both agents agree on the same simulated containers, and /usr/sbin/vzctl (needed by
the heartbeat agent) exists only while the row runs."""
import os
import sys

import pytest

pytestmark = pytest.mark.root

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_bench_row_runs_and_cleans_up():
    from bench.rows import manageve
    if os.path.lexists(manageve.SYSTEM_VZCTL) and not os.path.islink(manageve.SYSTEM_VZCTL):
        pytest.fail("a real %s exists on this machine; the bench row would refuse to run" % manageve.SYSTEM_VZCTL)
    with manageve.comparisons() as rows:
        assert os.path.islink(manageve.SYSTEM_VZCTL)
        assert len(rows) == 3
        for row in rows:
            for command in (row.a, row.b):
                wall, cpu, code = command.run_once()
                assert code in command.expect, (row.title, command.argv, code)
    assert not os.path.lexists(manageve.SYSTEM_VZCTL)
    assert not os.path.exists(os.path.join(manageve.LXC_PATH, manageve.LXC_CT))
    with pytest.raises(RuntimeError):
        with manageve.comparisons():
            raise RuntimeError("set-up interrupted")
    assert not os.path.lexists(manageve.SYSTEM_VZCTL)
