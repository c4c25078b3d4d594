"""LVMFilesystem on the host tier: real ext4/xfs on loop devices, real LVM metadata (system ID, tags,
lvmlockd --test) on loop-device PVs; only device-mapper's kernel step is played by lab/dmstandin."""
import os
import subprocess

import pytest

from harness import ocf_tester, run_agent
from lab.rigs import lvm_rig
from lab.rigs.lvm_rig import mounted, sh

pytestmark = pytest.mark.root

AGENT = "LVMFilesystem"
VG = "pyra_lvm_sid"
TVG = "pyra_lvm_tag"
SVG = "pyra_lvm_lockd"


@pytest.fixture(scope="module")
def rig():
    r = lvm_rig.Rig("host")
    try:
        d1, d2, d3 = r.pv("d1", "1G"), r.pv("d2", "200M"), r.pv("d3", "200M")
        a = r.node("a", system_id="nodeA")
        r.node("b", system_id="nodeB")
        ta = r.node("ta", volume_list=["@nodeA"])
        r.node("tb", volume_list=["@nodeB"])
        lk = r.node("lk", lvmlockd=True)
        a.vgcreate(VG, d1)
        for lv, size, fstype in (("ext4", "64M", "ext4"), ("ext2", "32M", "ext2"), ("xfs", "320M", "xfs"),
                                 ("raw", "16M", None), ("bad", "32M", "ext4"), ("spc", "32M", "ext4"),
                                 ("tester", "32M", "ext4")):
            a.lvcreate(VG, lv, size)
            if fstype:
                a.mkfs(VG, lv, fstype)
        ta.vgcreate(TVG, d2)
        ta.lvcreate(TVG, "lv", "32M")
        ta.lvm("lvchange", "--addtag", "nodeA", f"{TVG}/lv")
        ta.mkfs(TVG, "lv", "ext4")
        ta.lvm("lvchange", "--deltag", "nodeA", f"{TVG}/lv")
        r.start_lockd()
        lk.lvm("vgcreate", "--shared", "--locktype", "dlm", SVG, d3)
        lk.lvcreate(SVG, "lv", "32M")
        lk.mkfs(SVG, "lv", "ext4")
        yield r
    finally:
        r.stop_lockd()
        r.cleanup()


def agent(rig, node, action, params, instance="fs", **kw):
    n = rig.nodes[node]
    env = dict(n.env(), **kw.pop("env", {}))
    return run_agent(n.agent(AGENT), action, params, rsctmp=str(n.rsctmp), instance=instance, env=env, **kw)


def params(rig, lv, vg=VG, **extra):
    p = {"vgname": vg, "lvname": lv, "directory": str(rig.work / "mnt" / lv), "stop_signals": "TERM:1 KILL:2"}
    p.update(extra)
    return p


def vg_systemid(rig, node="a"):
    return rig.nodes[node].lvm("vgs", "--foreign", "--noheadings", "-o", "vg_systemid", VG).stdout.strip()


def test_system_id_start_monitor_refusal_and_hand_over(rig):
    p = params(rig, "ext4")
    pb = dict(p, directory=p["directory"] + "-b")  # the simulated nodes share the host's mount table
    r = agent(rig, "a", "start", p)
    assert r.rc == 0, r
    assert mounted(p["directory"])
    assert vg_systemid(rig) == "nodeA"
    for level in (0, 10, 20):
        r = agent(rig, "a", "monitor", p, interval=10000, check_level=level)
        assert r.rc == 0, (level, r)
    assert os.path.exists(os.path.join(p["directory"], ".pyra_status"))
    # node B: a probe says stopped, a start is refused while nodeA owns the VG
    assert agent(rig, "b", "monitor", pb, instance="fsb").rc == 7
    r = agent(rig, "b", "start", pb, instance="fsb")
    assert r.rc == 1, r
    assert "nodeA" in r.exit_reason
    # a clean stop on A releases the VG; B then takes it
    r = agent(rig, "a", "stop", p)
    assert r.rc == 0, r
    assert not mounted(p["directory"])
    assert rig.nodes["a"].device(VG, "ext4") is None
    assert vg_systemid(rig) == ""
    assert agent(rig, "a", "monitor", p, interval=10000).rc == 7
    r = agent(rig, "b", "start", pb, instance="fsb")
    assert r.rc == 0, r
    assert vg_systemid(rig, "b") == "nodeB"
    assert mounted(pb["directory"])
    assert agent(rig, "b", "stop", pb, instance="fsb").rc == 0
    assert agent(rig, "a", "stop", p).rc == 0  # stopped already


def test_start_is_idempotent_and_stop_twice(rig):
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    assert agent(rig, "a", "start", p).rc == 0
    assert agent(rig, "a", "stop", p).rc == 0
    assert agent(rig, "a", "stop", p).rc == 0


def test_xfs_busy_unmount_with_holders_that_ignore_term(rig):
    p = params(rig, "xfs")
    assert agent(rig, "a", "start", p).rc == 0
    h1 = rig.holder(p["directory"], ignore_term=True, how="cwd")
    h2 = rig.holder(p["directory"], ignore_term=True, how="fd")
    # force_unmount=false: stop fails, the mount stays
    r = agent(rig, "a", "stop", dict(p, force_unmount="false"))
    assert r.rc == 1 and "busy" in r.exit_reason, r
    assert mounted(p["directory"]) and h1.poll() is None
    r = agent(rig, "a", "stop", p)
    assert r.rc == 0, r
    assert h1.wait(5) == -9 and h2.wait(5) == -9
    assert not mounted(p["directory"])
    assert rig.nodes["a"].device(VG, "xfs") is None


def test_holder_that_obeys_term_dies_on_term(rig):
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    h = rig.holder(p["directory"], ignore_term=False)
    r = agent(rig, "a", "stop", p)
    assert r.rc == 0, r
    assert h.wait(5) == -15


def test_submounts_are_unmounted_first(rig):
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    sub = os.path.join(p["directory"], "sub")
    os.makedirs(sub, exist_ok=True)
    sh(["mount", "-t", "tmpfs", "pyra-lvm-sub", sub])
    r = agent(rig, "a", "stop", p)
    assert r.rc == 0, r
    assert not mounted(sub) and not mounted(p["directory"])


def test_fsck_policies(rig):
    a = rig.nodes["a"]
    # clean + forced check
    p = params(rig, "ext4", run_fsck="force")
    assert agent(rig, "a", "start", p).rc == 0
    assert agent(rig, "a", "stop", p).rc == 0
    # a corrupted image: the forced check fails the start with fsck's summary
    a.activate(VG, "bad")
    lvm_rig.corrupt_ext4(a.device(VG, "bad"))
    a.deactivate(VG, "bad")
    p = params(rig, "bad", run_fsck="force")
    r = agent(rig, "a", "start", p)
    assert r.rc == 1, r
    assert "fsck" in r.exit_reason and "rc 4" in r.exit_reason, r.exit_reason
    assert not mounted(p["directory"])
    assert agent(rig, "a", "stop", p).rc == 0
    # auto checks an ext2 filesystem (no journal): a corrupted one fails the same way
    a.activate(VG, "ext2")
    dev = a.device(VG, "ext2")
    lvm_rig.corrupt_ext4(dev)
    a.deactivate(VG, "ext2")
    p = params(rig, "ext2", run_fsck="auto")
    r = agent(rig, "a", "start", p)
    assert r.rc == 1 and "fsck" in r.exit_reason, r
    assert agent(rig, "a", "stop", p).rc == 0
    # run_fsck=no mounts it anyway (the admin asked for it)
    r = agent(rig, "a", "start", dict(p, run_fsck="no"))
    assert r.rc in (0, 1), r
    assert agent(rig, "a", "stop", p).rc == 0


def test_fsck_auto_skips_journalled_and_force_repairs_marked(rig):
    a = rig.nodes["a"]
    a.activate(VG, "ext4")
    lvm_rig.mark_fsck_due(a.device(VG, "ext4"))
    a.deactivate(VG, "ext4")
    p = params(rig, "ext4", run_fsck="force")
    r = agent(rig, "a", "start", p)
    assert r.rc == 0, r
    assert agent(rig, "a", "stop", p).rc == 0


def test_mount_point_with_spaces(rig):
    p = params(rig, "spc", directory=str(rig.work / "mnt" / "with space\tand tab"))
    r = agent(rig, "a", "start", p)
    assert r.rc == 0, r
    assert agent(rig, "a", "monitor", p, interval=10000).rc == 0
    assert agent(rig, "a", "stop", p).rc == 0
    assert not mounted(p["directory"])


def test_crash_memory_and_probe(rig):
    a = rig.nodes["a"]
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    sh(["umount", p["directory"]])
    a.deactivate(VG, "ext4")
    assert agent(rig, "a", "monitor", p, interval=10000).rc == 1
    assert agent(rig, "a", "monitor", p).rc == 7  # probe
    assert agent(rig, "a", "stop", p).rc == 0
    assert agent(rig, "a", "monitor", p, interval=10000).rc == 7
    # active but not mounted: a failure, not "stopped"
    assert agent(rig, "a", "start", p).rc == 0
    sh(["umount", p["directory"]])
    r = agent(rig, "a", "monitor", p, interval=10000)
    assert r.rc == 1 and "not mounted" in r.exit_reason, r
    assert agent(rig, "a", "stop", p).rc == 0
    assert a.device(VG, "ext4") is None


def test_probe_and_stop_without_parameters_use_the_record(rig):
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    r = agent(rig, "a", "monitor", {}, interval=10000)
    assert r.rc == 0, r
    assert agent(rig, "a", "stop", {}).rc == 0
    assert not mounted(p["directory"])
    assert agent(rig, "a", "monitor", {}).rc == 7


def test_foreign_mount_on_directory_is_refused(rig):
    p = params(rig, "ext4")
    os.makedirs(p["directory"], exist_ok=True)
    sh(["mount", "-t", "tmpfs", "pyra-lvm-other", p["directory"]])
    try:
        r = agent(rig, "a", "start", p)
        assert r.rc == 1 and "already has" in r.exit_reason, r
        assert agent(rig, "a", "stop", p).rc == 0
        assert mounted(p["directory"])  # not ours: left alone
    finally:
        sh(["umount", p["directory"]])


def test_read_only_remount_is_degraded(rig):
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    sh(["mount", "-o", "remount,ro", p["directory"]])
    r = agent(rig, "a", "monitor", p, interval=10000)
    assert r.rc == 190, r
    assert "read-only" in r.exit_reason
    assert agent(rig, "a", "monitor", p, interval=10000, check_level=20).rc == 190
    assert agent(rig, "a", "stop", p).rc == 0


def test_unknown_check_level_falls_back(rig):
    p = params(rig, "ext4")
    assert agent(rig, "a", "start", p).rc == 0
    assert agent(rig, "a", "monitor", p, interval=10000, check_level=15).rc == 0
    assert agent(rig, "a", "monitor", p, interval=10000, check_level=99).rc == 0
    assert agent(rig, "a", "stop", p).rc == 0


def test_raw_lv(rig):
    p = {"vgname": VG, "lvname": "raw"}
    r = agent(rig, "a", "start", p, instance="raw")
    assert r.rc == 0, r
    assert rig.nodes["a"].device(VG, "raw")
    assert agent(rig, "a", "monitor", p, instance="raw", interval=10000, check_level=10).rc == 0
    assert agent(rig, "a", "stop", p, instance="raw").rc == 0
    assert rig.nodes["a"].device(VG, "raw") is None
    assert agent(rig, "a", "monitor", p, instance="raw", interval=10000).rc == 7


def test_tagging_ownership_and_filter(rig):
    p = params(rig, "lv", vg=TVG, vg_access_mode="tagging", tag="nodeA")
    r = agent(rig, "ta", "start", p)
    assert r.rc == 0, r
    tags = rig.nodes["ta"].lvm("lvs", "--noheadings", "-o", "lv_tags", f"{TVG}/lv").stdout.strip()
    assert tags == "nodeA"
    pb = dict(p, tag="nodeB", directory=p["directory"] + "-b")
    r = agent(rig, "tb", "start", pb, instance="fsb")
    assert r.rc == 1 and "tagged for nodeA" in r.exit_reason, r
    assert agent(rig, "ta", "stop", p).rc == 0
    tags = rig.nodes["ta"].lvm("lvs", "--noheadings", "-o", "lv_tags", f"{TVG}/lv").stdout.strip()
    assert tags == ""
    # the activation filter skips an LV whose tag this node does not accept: lvchange says 0, we check
    r = agent(rig, "ta", "start", dict(p, tag="elsewhere"), instance="filt")
    assert r.rc == 1 and "not active" in r.exit_reason, r
    assert agent(rig, "ta", "stop", dict(p, tag="elsewhere"), instance="filt").rc == 0
    assert rig.nodes["ta"].device(TVG, "lv") is None
    # B with its own accepted tag: after A released the LV it works
    r = agent(rig, "tb", "start", pb, instance="fsb")
    assert r.rc == 0, r
    assert agent(rig, "tb", "stop", pb, instance="fsb").rc == 0


def test_lvmlockd_lock_is_taken_and_released(rig):
    lk = rig.nodes["lk"]
    p = params(rig, "lv", vg=SVG, vg_access_mode="lvmlockd")
    r = agent(rig, "lk", "start", p)
    assert r.rc == 0, r
    info = lk.in_ns(["lvmlockctl", "--info"]).stdout
    assert "LK LV ex" in info, info
    assert agent(rig, "lk", "monitor", p, interval=10000).rc == 0
    assert agent(rig, "lk", "stop", p).rc == 0
    info = lk.in_ns(["lvmlockctl", "--info"]).stdout
    assert "LK LV ex" not in info, info        # 2.03.16 shows the lock "un", 2.03.31 no longer lists it


def test_access_mode_must_match_the_vg(rig):
    r = agent(rig, "lk", "validate-all", params(rig, "lv", vg=SVG, vg_access_mode="system_id"))
    assert r.rc == 6 and "lvmlockd" in r.exit_reason, r
    r = agent(rig, "lk", "start", params(rig, "lv", vg=SVG, vg_access_mode="tagging"))
    assert r.rc == 6, r
    r = agent(rig, "a", "validate-all", params(rig, "ext4", vg_access_mode="lvmlockd"))
    assert r.rc == 6 and "not a shared VG" in r.exit_reason, r
    assert agent(rig, "a", "validate-all", params(rig, "ext4")).rc == 0


def test_configuration_errors(rig):
    r = agent(rig, "a", "validate-all", params(rig, "ext4", vg_access_mode="lvmlockd", activation_mode="shared",
                                                fstype="ext4"))
    assert r.rc == 6 and "cluster filesystem" in r.exit_reason, r
    r = agent(rig, "a", "validate-all", params(rig, "ext4", vg_access_mode="clvmd"))
    assert r.rc == 6 and "lvmlockd" in r.exit_reason, r
    # the same configuration on a probe or a stop is not fatal
    assert agent(rig, "a", "monitor", params(rig, "ext4", vg_access_mode="clvmd")).rc == 7
    assert agent(rig, "a", "stop", params(rig, "ext4", vg_access_mode="clvmd")).rc == 0


def test_missing_vg_or_lv(rig):
    p = params(rig, "nope", vg="pyra_lvm_absent")
    assert agent(rig, "a", "monitor", p).rc == 7
    assert agent(rig, "a", "monitor", p, interval=10000).rc == 7
    assert agent(rig, "a", "stop", p).rc == 0
    r = agent(rig, "a", "start", p)
    assert r.rc == 5 and "not visible" in r.exit_reason, r
    r = agent(rig, "a", "start", params(rig, "nope"))
    assert r.rc == 5 and "does not exist" in r.exit_reason, r


def test_ocf_tester(rig):
    a = rig.nodes["a"]
    p = params(rig, "tester")
    env = dict(a.env(), HA_RSCTMP=str(a.rsctmp))
    rc, out = ocf_tester(a.agent(AGENT), p, env=env, timeout=300)
    assert rc == 0, out
    assert not mounted(p["directory"])
    assert a.device(VG, "tester") is None


def test_stand_in_leaves_no_device_after_tests(rig):
    for n in rig.nodes.values():
        left = [f for f in os.listdir(n.dm)] if os.path.isdir(n.dm) else []
        assert left == [], (n.name, left)
    assert subprocess.run(["losetup", "-l"], capture_output=True, text=True).returncode == 0
