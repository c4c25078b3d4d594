"""tests/FAULTS.md names real tests: every row has at least one, and every name resolves to a file and a
test function in it (a renamed or deleted test fails here instead of silently leaving a row unproven)."""
import os
import re

import faults_table


def test_every_named_test_exists():
    ids = faults_table.node_ids()
    assert len(ids) > 40
    for node in ids:
        path, _, func = node.partition("::")
        full = os.path.join(faults_table.ROOT, path)
        assert os.path.isfile(full), node
        if func:
            with open(full, encoding="utf-8") as handle:
                assert re.search(r"^def %s\(" % re.escape(func), handle.read(), re.M), node


def test_every_row_names_a_test():
    with open(faults_table.TABLE, encoding="utf-8") as handle:
        rows = [line for line in handle if line.startswith("| ") and not line.startswith("| fault")
                and not line.startswith("| point")]
    assert len(rows) >= 17
    for row in rows:
        assert faults_table.NODE.search(row), row
