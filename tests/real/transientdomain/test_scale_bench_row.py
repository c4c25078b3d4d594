"""The scale bench row (issue 14) at a small count: every monitor of a round and of a storm answers 0 on both
agents (the bench refuses to time failures), the notes measure, and nothing of the row is left afterwards."""
import os
import sys

import pytest

pytestmark = [pytest.mark.root, pytest.mark.lxc]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_scale_row_measures_and_cleans_up(monkeypatch):
    from bench.core import Comparison, Note
    from bench.rows import scale
    from lab.rigs import libvirt_lxc as X
    monkeypatch.setattr(scale, "COUNT", 4)
    with scale.comparisons() as rows:
        assert [type(r) for r in rows] == [Comparison, Note, Note]
        for command in (rows[0].a, rows[0].b):
            _, cpu, code = command.run_once()
            assert code == 0 and cpu > 0, command.argv
        assert "of one CPU" in rows[1].measure()
        storm = rows[2].measure()
        assert storm.startswith("TransientDomain ") and ", VirtualDomain " in storm
        peaks = [int(part.split()[-1]) for part in storm.split(", ")]
        assert all(0 <= p <= 4 * 8 for p in peaks), storm  # a short connection may fall between two samples
    assert not [p for p in (X.WORK).glob("scale-%d" % os.getpid()) if p.exists()]
    assert not os.path.exists(X.BASE / ("td-scale%d" % os.getpid()))
