#!/usr/bin/python3
"""`make soak`: the chaos soak on the 3-node lab (lab/soak/engine.py says what it does and checks).

    run.py [--minutes N] [--seed S[,S...]] [--kinds K,K...] [--keep]

Minutes (default 60, env SOAK_MINUTES) are shared evenly by the seeds (default: one from the clock, printed;
env SOAK_SEED). The lab is brought up if it is not running, and taken down afterwards unless --keep (or if it
was already running). pyra must be installed on the host (`make soak` runs `make install` first). Exit status
0 when every invariant held. Output: /var/tmp/pyra-soak/<time>-seed<S>/{timeline,summary}.{txt,json}.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lab import pyralab  # noqa: E402
from lab.soak import engine, faults, rig  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 60))
    parser.add_argument("--seed", default=os.environ.get("SOAK_SEED") or str(int(time.time()) % 100000))
    parser.add_argument("--kinds", help="only these fault kinds (comma-separated): " + ",".join(faults.KINDS))
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    args = parser.parse_args()
    seeds = [s.strip() for s in args.seed.split(",") if s.strip()]
    kinds = args.kinds.split(",") if args.kinds else None
    if kinds and not set(kinds) <= set(faults.KINDS):
        parser.error("unknown kinds: %s" % ", ".join(sorted(set(kinds) - set(faults.KINDS))))
    lab = pyralab.Lab()
    was_up = bool(lab.nodes) and all(lab.alive(n) for n in lab.nodes)
    if not was_up:
        lab.up(3)
    san = None
    ok = True
    try:
        san = rig.setup(lab)
        for seed in seeds:
            soak = engine.Soak(lab, seed, args.minutes / len(seeds), kinds=kinds)
            ok = soak.run() and ok
            if not ok:
                break
    finally:
        rig.teardown(lab, san)
        if not was_up and not args.keep:
            lab.down()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
