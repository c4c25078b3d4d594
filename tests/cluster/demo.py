#!/usr/bin/python3
"""`make demo`: a 3-node Pacemaker cluster in namespaces on this machine, running pyra agents.

Owns the demo's story (what is configured, shown and broken); the cluster itself is pyralab.py. Steps:
bring the cluster up, configure resources with crmsh as an admin would, show crm_mon, live-migrate, kill a
node and show the failover (the node is fenced by really killing its processes), bring the node back, then
print how to look around and how to tear everything down (`make demo-down`).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clusterops as co  # noqa: E402
import pyralab  # noqa: E402

LAB = os.path.abspath(os.path.join(os.path.dirname(__file__), "pyralab.py"))


def say(text):
    sys.stdout.write(f"\n\033[1m==> {text}\033[0m\n")
    sys.stdout.flush()


def show(cmd_text, res):
    sys.stdout.write(f"$ {cmd_text}\n{res.stdout}{res.stderr}")
    sys.stdout.flush()


def admin(lab, argv, node="n1", check=True):
    res = co.sh(lab, argv, node=node, check=check)
    show(f"pyralab exec {node} {' '.join(argv)}", res)
    return res


def main():
    lab = pyralab.Lab()
    say("Bringing up a 3-node Pacemaker 2.1 + Corosync 3 cluster in namespaces (n1 n2 n3)")
    t = co.Timer()
    lab.up(3)
    sys.stdout.write(f"cluster up in {t():.1f}s; fencing: stonith:fence_pyralab kills a fenced node's processes\n")

    say("Configuring pyra resources with crmsh")
    with open(f"{pyralab.STORAGE}/hello.conf", "w", encoding="ascii") as f:
        f.write("hello from the shared storage\n")
    if not lab.where("hello"):
        admin(lab, ["crm", "-w", "configure", "primitive", "hello", "ocf:pyra:PyraExample",
                    "params", f"config={pyralab.SHARED}/hello.conf", "fake=demo",
                    "op", "monitor", "interval=10s", "timeout=20s", "meta", "allow-migrate=true"])
    if not lab.where("hello2"):
        admin(lab, ["pcs", "resource", "create", "hello2", "ocf:pyra:PyraExample", "fake=pcs",
                    "op", "monitor", "interval=10s", "timeout=20s", "--wait=60"])
    say("A typo in a parameter name is refused by the tools, a wrong value by the agent's validate-all")
    admin(lab, ["crm", "configure", "primitive", "oops", "ocf:pyra:PyraExample", "params", "stat_dir=/tmp"],
          check=False)
    admin(lab, ["crm_resource", "--validate", "--class", "ocf", "--provider", "pyra", "--agent", "PyraExample",
                "--option", "start_delay=soon"], check=False)

    say("crm_mon")
    admin(lab, ["crm_mon", "-1", "-r"])

    src = lab.where("hello")[0]
    dst = next(n for n in lab.nodes if n != src)
    say(f"Live migration: crm resource move hello {dst} (migrate_to on {src}, migrate_from on {dst})")
    t = co.Timer()
    admin(lab, ["crm_resource", "--move", "-r", "hello", "-N", dst])
    co.wait_where(lab, "hello", lambda w: w == [dst], 60)
    lab.settle(60)
    sys.stdout.write(f"hello runs on {dst} after {t():.1f}s; what Pacemaker ran:\n")
    for op in co.ops(lab, "hello"):
        if op.op not in ("monitor", "probe"):
            sys.stdout.write(f"   {op}\n")
    admin(lab, ["crm_resource", "--clear", "-r", "hello"])

    victim = lab.where("hello")[0]
    survivor = next(n for n in lab.nodes if n != victim)
    say(f"Power cut: SIGKILL every process of {victim}")
    t = co.Timer()
    lab.kill_node(victim)
    now = co.wait_where(lab, "hello", lambda w: len(w) == 1 and w[0] != victim, 120, exclude=(victim,))
    sys.stdout.write(f"{victim} was fenced and hello runs on {now[0]}, {t():.1f}s after the power cut\n")
    for line in lab.fence_calls():
        if "off done" in line:
            sys.stdout.write(f"   fence_pyralab: {line.split(' ', 2)[2]}\n")
    admin(lab, ["crm_mon", "-1", "-r"], node=survivor)

    say(f"Booting {victim} again")
    lab.start_node(victim)
    lab.settle(60)
    admin(lab, ["crm_mon", "-1", "-r"], node=survivor)

    say("Look around")
    sys.stdout.write(
        f"  /usr/bin/python3 {LAB} exec n1 crm_mon          live cluster status (Ctrl-C to leave)\n"
        f"  /usr/bin/python3 {LAB} exec n2 crm configure show\n"
        f"  /usr/bin/python3 {LAB} exec n3 pcs status --full\n"
        f"  /usr/bin/python3 {LAB} kill n2 | start n2 | freeze n2 | thaw n2 | partition n2 | heal\n"
        f"  logs: {pyralab.LAB}/nodes/<node>/var-log-pacemaker/pacemaker.log, .../var-log-corosync/corosync.log\n"
        f"  fencing log: {pyralab.LAB}/fence/calls.log\n"
        "Tear it all down (namespaces, daemons, files): make demo-down\n")


if __name__ == "__main__":
    try:
        main()
    except (pyralab.LabError, AssertionError) as e:
        sys.stderr.write(f"demo failed: {e}\n")
        sys.exit(1)
