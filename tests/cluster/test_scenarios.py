"""Cluster scenarios (issue 7): pyra agents driven by a real Pacemaker 2.1 + Corosync 3 cluster of 3 nodes.

The cluster is the session fixture `lab` (tests/cluster/conftest.py, built by lab/pyralab.py): fencing is real
(fence_pyralab kills the victim node's processes). Each test creates its own resources and removes them.
PyraExample proves the rig and the library's OCF semantics; the scenarios pick up real agents from agents/.
"""
import os

import pytest

from . import profiles
from lab import clusterops as co
from lab import pyralab

pytestmark = [pytest.mark.root, pytest.mark.cluster, pytest.mark.netns, pytest.mark.slow]

SHARED = pyralab.SHARED
STORAGE = pyralab.STORAGE


def test_rig_nodes_are_separate_machines(cluster):
    """Each node has its own hostname, /run, /dev/shm and Pacemaker state; all three are online with fencing."""
    assert cluster.online(cluster.viewer()) == ["n1", "n2", "n3"]
    for n in cluster.nodes:
        assert cluster.exec(n, ["hostname"], check=True).stdout.strip() == n
    cluster.exec("n1", ["touch", "/run/pyra-pcmk-probe"], check=True)
    try:
        assert cluster.exec("n2", ["test", "-e", "/run/pyra-pcmk-probe"]).returncode == 1
        assert not os.path.exists("/run/pyra-pcmk-probe")
    finally:
        cluster.exec("n1", ["rm", "-f", "/run/pyra-pcmk-probe"])
    props = co.sh(cluster, ["crm_attribute", "-t", "crm_config", "-n", "stonith-enabled", "-G", "-q"]).stdout
    assert props.strip() == "true"
    assert cluster.where("fence-lab")


# ------------------------------------------------------------------------------------------ scenario 1
@pytest.mark.parametrize("agent", profiles.agents())
def test_configure_rejects_unknown_parameter_name(cluster, agent):
    """crm and pcs check parameter names against the agent's metadata: a typo never reaches the CIB."""
    params = profiles.required_params(agent)
    kv = [f"{k}={v}" for k, v in params.items()]
    res = co.sh(cluster, ["crm", "configure", "primitive", "s1-typo", f"ocf:pyra:{agent}", "params"] + kv
                + ["no_such_param=1"], check=False)
    assert res.returncode != 0 and 'parameter "no_such_param" is not known' in res.stdout + res.stderr, res
    res = co.sh(cluster, ["pcs", "resource", "create", "s1-typo", f"ocf:pyra:{agent}"] + kv + ["no_such_param=1"],
                check=False)
    assert res.returncode != 0 and "invalid resource option 'no_such_param'" in res.stderr, res
    assert co.sh(cluster, ["crm_resource", "-r", "s1-typo", "--query-xml"], check=False).returncode != 0


@pytest.mark.parametrize("agent", profiles.agents())
def test_validate_all_rejects_wrong_value_with_reason(cluster, agent):
    """A wrong value is caught by the agent's validate-all (6) with the agent's reason, through both tools."""
    params, name = profiles.bad_value(agent)
    opts = []
    for k, v in params.items():
        opts += ["--option", f"{k}={v}"]
    res = co.sh(cluster, ["crm_resource", "--validate", "--class", "ocf", "--provider", "pyra", "--agent", agent]
                + opts, check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 6, out
    reasons = [line for line in out.splitlines() if line.startswith("ocf-exit-reason:")]
    assert len(reasons) == 1 and name in reasons[0], out
    res = co.sh(cluster, ["pcs", "resource", "create", "s1-bad", f"ocf:pyra:{agent}"]
                + [f"{k}={v}" for k, v in params.items()] + ["--agent-validation"], check=False)
    assert res.returncode != 0 and "Validation result from agent" in res.stderr and name in res.stderr, res
    assert co.sh(cluster, ["crm_resource", "-r", "s1-bad", "--query-xml"], check=False).returncode != 0


def test_configure_with_crm_and_pcs_and_run(cluster):
    """The same agent configured with crmsh and with pcs starts, is monitored, and stops."""
    try:
        t = co.Timer()
        co.crm(cluster, "configure", "primitive", "s1-crm", "ocf:pyra:PyraExample", "params", "fake=crm",
               "op", "monitor", "interval=5s", "timeout=20s")
        co.record("PyraExample start (crm configure primitive + settle)", t(), agent="PyraExample", kind="start")
        t = co.Timer()
        co.sh(cluster, ["pcs", "resource", "create", "s1-pcs", "ocf:pyra:PyraExample", "fake=pcs",
                        "op", "monitor", "interval=5s", "timeout=20s", "--wait=60"])
        co.record("PyraExample start (pcs resource create --wait)", t())
        for rsc in ("s1-crm", "s1-pcs"):
            nodes = co.wait_where(cluster, rsc, lambda w: len(w) == 1, 30)
            text = cluster.exec(nodes[0], ["cat", f"/run/pyra-example/{rsc}.running"], check=True).stdout
            assert text.strip() == rsc[3:]
            done = [(o.op, o.rc) for o in co.ops(cluster, rsc)]
            assert ("probe", 7) in done and ("start", 0) in done and done.count(("start", 0)) == 1, done
        pyralab.wait_for(lambda: any(o.op == "monitor" and o.rc == 0 for o in co.ops(cluster, "s1-crm")), 20,
                         what="a recurring monitor of s1-crm")
        co.crm(cluster, "resource", "stop", "s1-crm")
        assert cluster.where("s1-crm") == []
        assert co.failed_actions(cluster) == []
    finally:
        co.remove(cluster, "s1-crm", "s1-pcs")


# ------------------------------------------------------------------------------------------ scenario 5
def test_probe_without_config_reports_stopped_and_nothing_starts_twice(cluster):
    """A node that cannot see the shared config answers its probe with 7, and the resource runs exactly once."""
    conf = f"{STORAGE}/s5.conf"
    with open(conf, "w", encoding="ascii") as f:
        f.write("example\n")
    cluster.unplug("n3")
    try:
        assert cluster.exec("n3", ["test", "-e", f"{SHARED}/s5.conf"]).returncode == 1
        assert cluster.exec("n1", ["test", "-e", f"{SHARED}/s5.conf"]).returncode == 0
        co.crm(cluster, "configure", "primitive", "s5", "ocf:pyra:PyraExample", "params", f"config={SHARED}/s5.conf",
               "op", "monitor", "interval=5s", "timeout=20s")
        nodes = co.wait_where(cluster, "s5", lambda w: len(w) == 1, 30)
        assert nodes[0] != "n3"
        probes = {o.node: o.rc for o in co.ops(cluster, "s5") if o.op == "probe"}
        assert probes == {"n1": 7, "n2": 7, "n3": 7}, probes
        # n3 reboots while still cut off from the storage: its new probe must say 7 again
        cluster.stop_node("n3")
        cluster.start_node("n3")  # its mount namespace (without the storage) survives the reboot
        assert cluster.exec("n3", ["test", "-e", f"{SHARED}/s5.conf"]).returncode == 1
        cluster.settle(60)
        probes = [o for o in co.ops(cluster, "s5") if o.op == "probe" and o.node == "n3"]
        assert [o.rc for o in probes] == [7, 7], probes
        starts = [o for o in co.ops(cluster, "s5") if o.op == "start"]
        assert len(starts) == 1 and starts[0].rc == 0, starts
        assert cluster.where("s5") == nodes
        assert co.failed_actions(cluster) == []
    finally:
        co.remove(cluster, "s5")
        cluster.plug("n3")
        os.unlink(conf)


# ------------------------------------------------------------------------------------------ scenario 6
def test_failing_stop_fences_the_node_and_recovers_elsewhere(cluster):
    """A stop that fails gets its node fenced (really: every process killed), then the resource runs elsewhere."""
    try:
        co.crm(cluster, "configure", "primitive", "s6", "ocf:pyra:PyraExample", "params", "fail_stop=true",
               "op", "monitor", "interval=5s", "timeout=20s", "op", "stop", "timeout=20s", "interval=0")
        victim = co.wait_where(cluster, "s6", lambda w: len(w) == 1, 30)[0]
        target = next(n for n in cluster.nodes if n != victim)
        fenced_before = len(cluster.fence_calls())
        t = co.Timer()
        co.sh(cluster, ["crm_resource", "--move", "-r", "s6", "-N", target], node=target)
        co.wait_where(cluster, "s6", lambda w: w == [target], 90, exclude=(victim,))
        cluster.settle(60, viewer=target)
        co.record("PyraExample recovered after a failed stop (fence + start)", t())
        calls = cluster.fence_calls()[fenced_before:]
        assert any(f"action=reboot plug={victim} off done" in c or f"action=off plug={victim} off done" in c
                   for c in calls), calls
        assert not cluster.alive(victim) and cluster.node_pids(victim) == set()
        stops = [o for o in co.ops(cluster, "s6") if o.op == "stop"]
        assert stops and stops[0].node == victim and stops[0].rc != 0, stops
        log = cluster.pacemaker_log(target) + "".join(cluster.pacemaker_log(n) for n in cluster.nodes)
        assert f"{victim} will be fenced" in log or f"Requesting fencing (reboot) of node {victim}" in log
    finally:
        # Its stop keeps failing (Pacemaker stops with the parameters of the start), so take it out of
        # management, clear it by hand on every node, let the probes see it stopped, and only then delete it.
        co.sh(cluster, ["crm_resource", "-r", "s6", "--meta", "-p", "is-managed", "-v", "false"], check=False)
        for n in cluster.nodes:
            if cluster.alive(n):
                cluster.exec(n, ["rm", "-f", "/run/pyra-example/s6.running",
                                 "/run/resource-agents/pyra/PyraExample/s6.state"])
        co.sh(cluster, ["crm_resource", "--refresh", "-r", "s6"], check=False)
        cluster.settle(60)
        co.remove(cluster, "s6")


# ------------------------------------------------------------------------------------------ failover
def test_node_killed_resource_fails_over_once_and_node_rejoins(cluster):
    """SIGKILL of the node running a resource: fenced, restarted on a survivor exactly once; the node rejoins."""
    try:
        co.crm(cluster, "configure", "primitive", "fo", "ocf:pyra:PyraExample",
               "op", "monitor", "interval=5s", "timeout=20s")
        victim = co.wait_where(cluster, "fo", lambda w: len(w) == 1, 30)[0]
        fenced_before = len(cluster.fence_calls())
        t = co.Timer()
        cluster.kill_node(victim)
        now = co.wait_where(cluster, "fo", lambda w: len(w) == 1 and w[0] != victim, 90, exclude=(victim,))
        cluster.settle(60, viewer=now[0])
        co.record("PyraExample failover after SIGKILL of its node", t(), agent="PyraExample", kind="failover")
        assert any(f"plug={victim} off done" in c for c in cluster.fence_calls()[fenced_before:])
        t = co.Timer()
        cluster.start_node(victim)
        co.record("node rejoin after fencing", t())
        cluster.settle(60)
        assert cluster.where("fo") == now
        starts = [o for o in co.ops(cluster, "fo") if o.op == "start" and o.rc == 0]
        assert [o.node for o in starts] == [victim, now[0]], starts
        running = [n for n in cluster.nodes
                   if cluster.exec(n, ["test", "-e", "/run/pyra-example/fo.running"]).returncode == 0]
        assert running == now
        probes = [o for o in co.ops(cluster, "fo") if o.op == "probe" and o.node == victim]
        assert probes[-1].rc == 7, probes
    finally:
        co.remove(cluster, "fo")


# ------------------------------------------------------------------------------------------ migration
def test_move_live_migrates_without_restart(cluster):
    """allow-migrate=true: `crm resource move` runs migrate_to on the source and migrate_from on the target."""
    try:
        co.crm(cluster, "configure", "primitive", "mig", "ocf:pyra:PyraExample", "params", "fake=moved",
               "op", "monitor", "interval=5s", "timeout=20s", "meta", "allow-migrate=true")
        src = co.wait_where(cluster, "mig", lambda w: len(w) == 1, 30)[0]
        dst = next(n for n in cluster.nodes if n != src)
        t = co.Timer()
        co.sh(cluster, ["crm_resource", "--move", "-r", "mig", "-N", dst])
        co.wait_where(cluster, "mig", lambda w: w == [dst], 60)
        cluster.settle(60)
        co.record("PyraExample live migration (crm_resource --move)", t(), agent="PyraExample", kind="migrate")
        seq = [(o.op, o.node, o.rc) for o in co.ops(cluster, "mig") if o.op != "monitor" and o.op != "probe"]
        assert seq == [("start", src, 0), ("migrate_to", src, 0), ("migrate_from", dst, 0), ("stop", src, 0)], seq
        assert cluster.exec(dst, ["cat", "/run/pyra-example/mig.running"], check=True).stdout.strip() == "moved"
    finally:
        co.remove(cluster, "mig")
