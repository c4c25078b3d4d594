"""The chaos soak: random, overlapping faults on the 3-node lab cluster, judged by invariants (issue 15).

Pacemaker's CTS runs randomized fault sequences for hours; Jepsen checks invariants instead of scripted
outcomes. This package does both for pyra on the lab of lab/pyralab.py:

  rig.py      the soak's resources (an LV-backed TCG guest, an LV-backed LXC container, a live-migrating guest),
              their workloads, and what can be observed of them from the host (processes, active LVs)
  records.py  the workload's records and acknowledgements (writer.sh writes them inside guests/containers)
  faults.py   the fault catalogue and the seeded episode planner
  engine.py   the loop: episodes of faults, invariants at least once a second, convergence, the summary
  run.py      ``make soak`` (SOAK_MINUTES, SOAK_SEED)
"""
