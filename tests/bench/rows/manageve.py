"""Bench rows: ocf:pyra:ManageVE monitor vs ocf:heartbeat:ManageVE monitor on the same simulated container,
and ManageVE runtime=lxc vs ocf:heartbeat:lxc monitor on the same real busybox LXC container.

Both agents talk to one vzctl: the contract simulator (tests/fakes/vzctl). The heartbeat agent hard-codes
/usr/sbin/vzctl, so for the duration of the row /usr/sbin/vzctl is a symlink to the simulator; it is
removed afterwards (and the row refuses to run if a real /usr/sbin/vzctl exists). Goal: <= 0.5x wall and CPU.
"""

import contextlib
import os
import sys

from bench.core import Command, Comparison

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/ManageVE"
HEARTBEAT_LXC = "/usr/lib/ocf/resource.d/heartbeat/lxc"
LXC_CT = "pyra-ve-bench"
LXC_PATH = "/var/lib/lxc"  # ocf:heartbeat:lxc has no lxcpath parameter
SYSTEM_VZCTL = "/usr/sbin/vzctl"
ROOT = "/var/tmp/pyra-ve/bench-vzsim"
RSCTMP = "/run/pyra-ve/bench-rsctmp"


@contextlib.contextmanager
def installed_simulator(target):
    """Make /usr/sbin/vzctl point at the simulator while the row runs; never leave it behind."""
    if os.path.lexists(SYSTEM_VZCTL):
        if os.path.islink(SYSTEM_VZCTL) and os.readlink(SYSTEM_VZCTL) == target:
            os.unlink(SYSTEM_VZCTL)  # a leftover of an interrupted run of this row
        else:
            raise RuntimeError("%s exists and is not the pyra simulator: not replacing it" % SYSTEM_VZCTL)
    os.symlink(target, SYSTEM_VZCTL)
    try:
        yield SYSTEM_VZCTL
    finally:
        if os.path.islink(SYSTEM_VZCTL) and os.readlink(SYSTEM_VZCTL) == target:
            os.unlink(SYSTEM_VZCTL)


def _env(sim, instance, interval):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RA_VERSION_MAJOR": "1",
           "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_INSTANCE": instance, "OCF_RESKEY_veid": "101",
           "OCF_RESKEY_CRM_meta_timeout": "20000", "HA_RSCTMP": RSCTMP, "LC_ALL": "C"}
    if interval:
        env["OCF_RESKEY_CRM_meta_interval"] = str(interval)
    env.update(sim.env)
    env.pop("VZCTL_SIM_LOG", None)
    return env


@contextlib.contextmanager
def comparisons():
    from fakes.vzctl.simrig import VZCTL, VzSim
    import shutil
    if not os.access(HEARTBEAT, os.X_OK):
        raise RuntimeError("%s is not installed (package resource-agents)" % HEARTBEAT)
    shutil.rmtree(ROOT, ignore_errors=True)
    sim = VzSim(ROOT, "legacy")
    os.makedirs(RSCTMP, exist_ok=True)
    try:
        with installed_simulator(VZCTL) as vzctl:
            sim.create("101")
            sim.create("102")
            sim.vzctl("start", "101", "--wait")
            pyra = os.path.join(REPO, "agents", "ManageVE")
            rows = []
            for ctid, title, interval, expect in (("101", "running, recurring monitor", 10000, 0),
                                                  ("102", "stopped, probe", None, 7)):
                a_env = _env(sim, "bench-ve-%s" % ctid, interval)
                a_env["OCF_RESKEY_veid"] = ctid
                a_env["OCF_RESKEY_vzctl"] = vzctl
                b_env = dict(a_env)
                del b_env["OCF_RESKEY_vzctl"]
                rows.append(Comparison("ManageVE monitor (%s)" % title,
                                       Command([pyra, "monitor"], a_env, expect=(expect,)),
                                       Command([HEARTBEAT, "monitor"], b_env, expect=(expect,)),
                                       goal=0.5, label_b="heartbeat"))
            rows.append(_lxc_row(pyra))
            yield rows
    finally:
        sim.cleanup()
        shutil.rmtree(RSCTMP, ignore_errors=True)
        from lab.rigs import lxc_ve
        lxc_ve.destroy(LXC_CT, lxcpath=LXC_PATH)


def _lxc_row(pyra):
    from lab.rigs import lxc_ve
    conf = lxc_ve.make_container(LXC_CT, lxcpath=LXC_PATH, force=True)
    lxc_ve.run(["lxc-start", "-P", LXC_PATH, "-n", LXC_CT, "-d"])
    base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_INSTANCE": "bench-ve-lxc",
            "OCF_RESKEY_CRM_meta_timeout": "20000", "OCF_RESKEY_CRM_meta_interval": "10000",
            "HA_RSCTMP": RSCTMP, "LC_ALL": "C"}
    a_env = dict(base, OCF_RESKEY_veid=LXC_CT, OCF_RESKEY_runtime="lxc", OCF_RESKEY_lxc_path=LXC_PATH)
    b_env = dict(base, OCF_RESKEY_container=LXC_CT, OCF_RESKEY_config=str(conf))
    return Comparison("ManageVE runtime=lxc monitor vs heartbeat:lxc (running)",
                      Command([pyra, "monitor"], a_env), Command([HEARTBEAT_LXC, "monitor"], b_env),
                      goal=0.5, label_b="heartbeat")
