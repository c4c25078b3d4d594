"""Bench row: ocf:pyra:LVMFilesystem monitor vs ocf:heartbeat:Filesystem monitor on the same mounted ext4.

The LV lives on a loop-device PV with real LVM metadata (lab/rigs/lvm_rig.py); the host kernel has no
device-mapper, so the LV's device is the stand-in loop device and ocf:heartbeat:LVM-activate cannot run here
(its monitor asks `dmsetup`): the anchor is Filesystem alone, which flatters the anchor. Goal: <= 0.3x.
Both run in the rig node's mount namespace (where the stand-in plays device-mapper), entered the same way.
Rows: depth 0 vs Filesystem depth 0, and depth 10 (O_DIRECT read) vs Filesystem OCF_CHECK_LEVEL=10.
"""

import contextlib
import os
import sys

from bench.core import Command, Comparison

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/Filesystem"
VG = "pyra_lvm_bench"


def _ocf_env(extra, params, rsctmp, level=None):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "LC_ALL": "C",
           "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1", "HA_RSCTMP": rsctmp,
           "OCF_RESOURCE_INSTANCE": "bench-fs", "OCF_RESKEY_CRM_meta_timeout": "20000",
           "OCF_RESKEY_CRM_meta_interval": "10000"}
    env.update(extra)
    if level is not None:
        env["OCF_CHECK_LEVEL"] = str(level)
    env.update({"OCF_RESKEY_" + k: v for k, v in params.items()})
    return env


@contextlib.contextmanager
def comparisons():
    from harness import run_agent
    from lab.rigs import lvm_rig
    rig = lvm_rig.Rig("bench")
    try:
        node = rig.node("a", system_id="nodeA")
        pv = rig.pv("d1", "200M")
        node.vgcreate(VG, pv)
        node.lvcreate(VG, "lv", "64M")
        node.mkfs(VG, "lv", "ext4")
        directory = str(rig.mnt / "lv")  # below the rig's shared mount, as the agent mounts it in the namespace
        params = {"vgname": VG, "lvname": "lv", "directory": directory, "fstype": "ext4"}
        res = run_agent(node.agent("LVMFilesystem"), "start", params, rsctmp=str(node.rsctmp), instance="bench-fs",
                        env=node.env())
        if res.rc != 0:
            raise RuntimeError("LVMFilesystem start failed: %s" % res.exit_reason)
        device = node.device(VG, "lv")
        agent = os.path.join(REPO, "agents", "LVMFilesystem")
        hb_rsctmp = str(rig.run / "hb-rsctmp")
        os.makedirs(hb_rsctmp, exist_ok=True)
        hb_params = {"device": device, "directory": directory, "fstype": "ext4"}
        rows = []
        for level in (0, 10):
            a = Command(node.ns + [agent, "monitor"], _ocf_env(node.env(), params, str(node.rsctmp), level))
            b = Command(node.ns + [HEARTBEAT, "monitor"], _ocf_env({}, hb_params, hb_rsctmp, level))
            rows.append(Comparison("LVMFilesystem monitor depth %d vs Filesystem monitor (same mounted ext4)"
                                   % level, a, b, goal=0.3, label_b="heartbeat:Filesystem"))
        yield rows
    finally:
        try:
            run_agent(node.agent("LVMFilesystem"), "stop", params, rsctmp=str(node.rsctmp), instance="bench-fs",
                      env=node.env())
        finally:
            rig.cleanup()
