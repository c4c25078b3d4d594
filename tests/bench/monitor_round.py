#!/usr/bin/python3
"""One round of many agent actions, as one node's pacemaker-execd runs them: the bench's unit of work at scale.

    monitor_round.py serial|storm AGENT ENVFILE

ENVFILE is JSON: a list of environments, one per resource. ``serial`` runs ``AGENT monitor`` for each in turn
(a round of recurring monitors; the caller's wait4 rusage then holds their summed CPU). ``storm`` starts them
all at once and waits for all (a probe storm: a node joining a cluster with every resource probed there).
Exit status 0 when every action returned 0, else 1 (the bench refuses to measure failures).
"""
import json
import os
import sys

import core  # tests/bench/core.py, beside this script


def spawn(agent, env):
    return core.spawn([agent, "monitor"], env)


def main(mode, agent, envfile):
    with open(envfile, encoding="utf-8") as handle:
        envs = json.load(handle)
    failed = 0
    if mode == "serial":
        for env in envs:
            _, status = os.waitpid(spawn(agent, env), 0)
            failed += os.waitstatus_to_exitcode(status) != 0
    else:
        for pid in [spawn(agent, env) for env in envs]:
            _, status = os.waitpid(pid, 0)
            failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
