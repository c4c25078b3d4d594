"""pyra list: the cluster model (pyra.cli.clusterstate) and the table, on cibadmin -Q / crm_mon --output-as=xml
recorded in the 3-node lab (Pacemaker 2.1; data/capture.py says how): vm-a running (allow-migrate), vm-b with
target-role Stopped, grp-ex (ex1, ex2), ex-bad whose start failed on every node, dummy (ocf:heartbeat:Dummy,
not listed), fence-lab (stonith, not listed); and the same cluster while vm-a live-migrates.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "lib"))

from pyra.cli import clusterstate, listing  # noqa: E402
from pyra.cli.main import CliError, NO_CLUSTER, NOT_FOUND, NOT_PYRA  # noqa: E402
from pyra.host.command import CommandResult  # noqa: E402

DATA = os.path.join(HERE, "data")


def texts(name):
    out = []
    for suffix in ("cib", "mon"):
        with open(os.path.join(DATA, "%s.%s.xml" % (name, suffix)), encoding="utf-8") as f:
            out.append(f.read())
    return out


def mon_node(mon, rid):
    for r in ET.fromstring(mon).iter("resource"):
        if r.get("id") == rid:
            return [n.get("name") for n in r.iter("node")]
    raise KeyError(rid)


@pytest.fixture
def settled():
    cib, mon = texts("settled")
    return clusterstate.parse(cib, mon), mon


def test_only_pyra_resources_in_cib_order(settled):
    state, _ = settled
    assert [r["resource"] for r in listing.rows(state)] == ["vm-a", "vm-b", "ex1", "ex2", "ex-bad"]
    assert "dummy" in state.resources and not state.resources["dummy"].is_pyra


def test_running_stopped_failed_group(settled):
    state, mon = settled
    rows = {r["resource"]: r for r in listing.rows(state)}
    assert rows["vm-a"]["where"] == mon_node(mon, "vm-a")[0]
    assert rows["vm-a"]["agent"] == "TransientDomain" and rows["vm-a"]["allow_migrate"] is True
    assert rows["vm-a"]["memory"] == "128" and rows["vm-a"]["cpu"] == "1"        # utilization set by the agent
    assert rows["vm-b"]["where"] == "Stopped" and rows["vm-b"]["target_role"] == "Stopped"
    assert rows["ex1"]["group"] == rows["ex2"]["group"] == "grp-ex"
    assert rows["ex1"]["where"] == mon_node(mon, "ex1")[0]
    bad = rows["ex-bad"]
    assert bad["where"].startswith("FAILED: parameter 'config' file /nonexistent/ex-bad.conf does not exist")
    assert bad["failed"] is True and len(bad["failures"]) == 3
    assert {f["node"] for f in bad["failures"]} == {"n1", "n2", "n3"}
    assert all(f["operation"] == "start" and f["rc"] == "5" for f in bad["failures"])


def test_table_and_json(settled):
    state, _ = settled
    text = listing.render(state)
    lines = text.splitlines()
    assert lines[0].split() == ["RESOURCE", "AGENT", "WHERE", "TARGET", "MEM", "CPU", "GROUP"]
    assert len(lines) == 6 and not any("dummy" in ln or "fence" in ln for ln in lines)
    assert [ln.split()[0] for ln in lines[1:]] == ["vm-a", "vm-b", "ex1", "ex2", "ex-bad"]
    data = json.loads(listing.render(state, as_json=True))
    assert [d["resource"] for d in data] == ["vm-a", "vm-b", "ex1", "ex2", "ex-bad"]
    assert {d["resource"]: d["nodes"] for d in data}["vm-b"] == []


def test_last_node_of_a_stopped_and_failed_history(settled):
    state, mon = settled
    assert state.resources["vm-a"].last_node == mon_node(mon, "vm-a")[0]
    assert state.resources["vm-b"].last_node is None           # never ran


def test_migrating():
    cib, mon = texts("migrating")
    state = clusterstate.parse(cib, mon)
    rsc = state.resources["vm-a"]
    assert rsc.migrating, rsc.pending
    row = {r["resource"]: r for r in listing.rows(state)}["vm-a"]
    src, dst = row["migrating"]["from"], row["migrating"]["to"]
    assert src and dst and src != dst
    assert row["where"] == "migrating %s->%s" % (src, dst)


def test_nodes_and_properties(settled):
    state, _ = settled
    assert sorted(state.nodes) == ["n1", "n2", "n3"]
    assert all(n.state() == "online" for n in state.nodes.values())
    assert state.migration_limit() == -1


def test_resource_lookup_errors(settled):
    state, _ = settled
    with pytest.raises(CliError) as e:
        state.resource("nope")
    assert e.value.code == NOT_FOUND
    with pytest.raises(CliError) as e:
        state.resource("dummy")
    assert e.value.code == NOT_PYRA and "pyra resources" in e.value.message
    assert state.resource("vm-a").id == "vm-a"


def test_load_is_two_spawns_with_timeouts(settled):
    cib, mon = texts("settled")
    calls = []

    def run(argv, timeout=None):
        calls.append((argv, timeout))
        return CommandResult(argv, 0, cib if argv[0] == "cibadmin" else mon)
    state = clusterstate.load(run)
    assert [c[0] for c in calls] == [["cibadmin", "-Q"], ["crm_mon", "--output-as=xml"]]
    assert all(c[1] for c in calls)
    assert "vm-a" in state.resources


def test_no_cluster_is_exit_5():
    def run(argv, timeout=None):
        return CommandResult(argv, 102, "", "crm_mon: Error: cluster is not available on this node")
    with pytest.raises(CliError) as e:
        clusterstate.load(run)
    assert e.value.code == NO_CLUSTER and "cannot be reached" in e.value.message

    def missing(argv, timeout=None):
        return CommandResult(argv, 127, error="not found")
    with pytest.raises(CliError) as e:
        clusterstate.load(missing)
    assert e.value.code == NO_CLUSTER


def test_garbage_xml_is_exit_5():
    with pytest.raises(CliError) as e:
        clusterstate.parse("<cib", "<x/>")
    assert e.value.code == NO_CLUSTER
