"""Unit tests of LVMFilesystem's pure logic: parameter rules, stop_signals, the LVM report/error parsing fed
with output recorded on this machine (shared/lab/storage/logs), fsck policy and rc mapping, dm names."""
import os

import pytest

from pyra.agents import lvmfilesystem as agent
from pyra.agents.lvmfilesystem import ownership
from pyra.backends import filesystem as fs
from pyra.backends import lvm, lvm_dm
from pyra.host.command import CommandResult  # noqa: E402
from pyra.ocf.deadline import Deadline  # noqa: E402

DM_NOISE = ("  /dev/mapper/control: open failed: No such device\n"
            "  Failure to communicate with kernel device-mapper driver.\n"
            "  Check that device-mapper is available in the kernel.\n"
            "  Incompatible libdevmapper 1.02.185 (2022-05-18) and kernel driver (unknown version).\n")


class FakeRun:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, timeout=None):
        self.calls.append(list(argv))
        key = argv[1]
        rc, out, err = self.answers.get(key, (0, "", ""))
        return CommandResult(argv, rc, out, err)


def schema_problems(**values):
    base = {"vgname": "vg", "lvname": "lv"}
    base.update(values)
    _, problems = agent.LVMFilesystem.schema.parse({k: str(v) for k, v in base.items()}, environmental=False)
    return [str(p) for p in problems]


def test_rules_accept_a_plain_configuration():
    assert schema_problems(directory="/srv/data", fstype="ext4") == []


@pytest.mark.parametrize("values, words", [
    ({"vg_access_mode": "clvmd"}, "lvmlockd"),
    ({"activation_mode": "shared"}, "vg_access_mode=lvmlockd"),
    ({"activation_mode": "shared", "vg_access_mode": "lvmlockd", "directory": "/srv", "fstype": "ext4"},
     "cluster filesystem"),
    ({"directory": "/"}, "not be /"),
    ({"stop_signals": "TERM:x"}, "bad wait"),
    ({"stop_signals": "NOPE"}, "unknown signal"),
    ({"vgname": "bad name"}, "vgname"),
])
def test_rules_refuse(values, words):
    problems = schema_problems(**values)
    assert problems and any(words in p for p in problems), problems


def test_shared_is_fine_for_cluster_fs_read_only_or_raw():
    for extra in ({"fstype": "gfs2", "directory": "/srv"}, {"fstype": "ext4", "directory": "/srv",
                                                            "options": "ro,noatime"}, {}):
        assert schema_problems(activation_mode="shared", vg_access_mode="lvmlockd", **extra) == []


def test_parse_stop_signals():
    assert agent.parse_stop_signals("TERM:5 KILL:5") == ((15, 5.0), (9, 5.0))
    assert agent.parse_stop_signals("sigint:0.5,KILL") == ((2, 0.5), (9, 5.0))
    assert agent.parse_stop_signals("15:1") == ((15, 1.0),)
    for bad in ("", "TERM:-1", "FOO"):
        with pytest.raises(ValueError):
            agent.parse_stop_signals(bad)


def test_stages_give_the_last_stage_everything_left():
    stages = agent._stages(((15, 5.0), (9, 5.0)), Deadline(60))
    assert stages[-1] == (9, 1.0)
    assert 0 < stages[0][1] < 1


def test_dm_name_doubles_dashes():
    assert lvm_dm.dm_name("vg-a", "lv-b-c") == "vg--a-lv--b--c"
    assert lvm_dm.dm_name("vg", "lv") == "vg-lv"


def test_fs_errors_reads_the_ext4_error_count(tmp_path):
    dev = lvm_dm.Device("/dev/mapper/vg-lv", os.makedev(253, 3))
    (tmp_path / "dev" / "block").mkdir(parents=True)
    (tmp_path / "fs" / "ext4" / "dm-3").mkdir(parents=True)
    os.symlink("../../devices/virtual/block/dm-3", tmp_path / "dev" / "block" / "253:3")
    assert agent.fs_errors(dev, "ext4", str(tmp_path)) is None  # no counter: unknown, not zero
    (tmp_path / "fs" / "ext4" / "dm-3" / "errors_count").write_text("12\n")
    assert agent.fs_errors(dev, "ext4", str(tmp_path)) == 12
    assert agent.fs_errors(dev, "ext3", str(tmp_path)) == 12
    assert agent.fs_errors(dev, "xfs", str(tmp_path)) is None


def _mon(**remotes):
    return ("<pacemaker-result><nodes>" + "".join(
        f'<node name="{n}" online="{str(s == "online").lower()}" unclean="{str(s == "unclean").lower()}" '
        'type="remote"/>' for n, s in remotes.items()) + "</nodes></pacemaker-result>")


class _Op:
    def __init__(self, online, rc=0, mon=_mon()):
        self.run = FakeRun({"-p": (rc, online, ""), "--one-shot": (0, mon, "")})
        self.deadline = Deadline(30)


@pytest.mark.parametrize("online,rc,mon,owner,ours,ok,words", [
    ("nodeA nodeB\n", 0, _mon(), "nodeA", "nodeB", False, "online cluster member"),
    ("nodeB\n", 0, _mon(), "nodeA", "nodeB", True, "not a member"),
    ("", 1, _mon(), "nodeA", "nodeB", False, "cannot tell"),
    # system IDs that are not node names (machineid): the owner always looks absent; refuse
    ("node1 node2\n", 0, _mon(), "nodeA", "nodeB", False, "not a cluster node name"),
    # Pacemaker Remote nodes are never in crm_node -p: a connected or not yet fenced one is still an owner,
    # a fenced one is not, and a remote node finds itself among the nodes that are up
    ("nodeB\n", 0, _mon(r1="online"), "r1", "nodeB", False, "online cluster member"),
    ("nodeB\n", 0, _mon(r1="unclean"), "r1", "nodeB", False, "online cluster member"),
    ("nodeB\n", 0, _mon(r1="offline"), "r1", "nodeB", True, "not a member"),
    ("nodeB\n", 0, _mon(r2="online"), "nodeA", "r2", True, "not a member"),
    ("nodeB\n", 0, "", "nodeA", "r2", False, "cannot tell"),
])
def test_take_over_only_from_a_node_that_left_the_partition(online, rc, mon, owner, ours, ok, words):
    allowed, why = ownership.may_take_over(_Op(online, rc, mon), owner, ours)
    assert allowed is ok and words in why


def test_why_skips_device_mapper_noise():
    res = CommandResult(["lvm", "lvchange"], 5, "",
                        DM_NOISE + "  Cannot access VG vg with system ID nodeA with local system ID nodeB.\n")
    assert lvm.why(res) == "Cannot access VG vg with system ID nodeA with local system ID nodeB."
    assert "rc 5" in lvm.why(CommandResult(["lvm", "lvchange"], 5, "", DM_NOISE))


def test_why_prefers_the_error_over_warnings():
    # lvm 2.03.16 in the guest, an LV on a missing PV activated without --activationmode partial
    stderr = ("  WARNING: Couldn't find device with uuid HeI3LN-QiiE-AmGL-7VPG-sAjv-Ei5t-OD0hir.\n"
              "  WARNING: VG pyra_lvg_p is missing PV HeI3LN-QiiE-AmGL-7VPG-sAjv-Ei5t-OD0hir (last written to "
              "/dev/vdd).\n"
              "  Refusing activation of partial LV pyra_lvg_p/span.  Use '--activationmode partial' to override.\n")
    assert lvm.why(CommandResult(["lvm", "lvchange"], 5, "", stderr)).startswith("Refusing activation of partial")
    only = "  WARNING: something odd.\n"
    assert lvm.why(CommandResult(["lvm", "lvchange"], 5, "", only)) == "WARNING: something odd."


def test_vg_report_with_noise_on_stderr():
    run = FakeRun({"vgs": (0, "  pyra_lvm_sid|wz--n-||nodeA|t1,t2|0|3\n", DM_NOISE)})
    row = lvm.Lvm(run).vg("pyra_lvm_sid")
    assert row["vg_systemid"] == "nodeA" and row["tags"] == ["t1", "t2"] and row["vg_lock_type"] == ""
    assert "--foreign" in run.calls[0]


def test_vg_not_found_is_none_and_other_errors_raise():
    run = FakeRun({"vgs": (5, "", '  Volume group "nope" not found\n  Cannot process volume group nope\n')})
    assert lvm.Lvm(run).vg("nope") is None
    run = FakeRun({"vgs": (5, "", "  Global lock failed: check that lvmlockd is running.\n")})
    with pytest.raises(lvm.LvmError) as err:
        lvm.Lvm(run).vg("x")
    assert "lvmlockd" in err.value.reason


def test_lv_report_and_missing_lv():
    run = FakeRun({"lvs": (0, "  lv|-wi-------|nodeA|abc|||\n".replace("|||", "||"), "")})
    row = lvm.Lvm(run).lv("vg", "lv")
    assert row["tags"] == ["nodeA"] and row["lv_uuid"] == "abc"
    run = FakeRun({"lvs": (5, "", '  Failed to find logical volume "vg/nope"\n')})
    assert lvm.Lvm(run).lv("vg", "nope") is None


def test_local_system_id():
    assert lvm.Lvm(FakeRun({"systemid": (0, "  system ID: nodeA\n", "")})).local_system_id() == "nodeA"
    assert lvm.Lvm(FakeRun({"systemid": (0, "  system ID: \n", "")})).local_system_id() == ""


def test_activation_refusal_and_takeover_argv():
    run = FakeRun({"lvchange": (5, "", "  LV locked by other host: vg_sh/lv1\n  Failed to lock logical volume "
                                       "vg_sh/lv1.\n")})
    with pytest.raises(lvm.LvmError) as err:
        lvm.Lvm(run).activate("vg_sh", "lv1", "ey", "partial")
    assert err.value.reason == "LV locked by other host: vg_sh/lv1"
    assert run.calls[0] == ["lvm", "lvchange", "-aey", "--activationmode", "partial", "vg_sh/lv1"]
    run = FakeRun({})
    lvm.Lvm(run).set_system_id("vg", "nodeB", previous_owner="nodeA")
    assert run.calls[0] == ["lvm", "vgchange", "-y", "--config", 'local/extra_system_ids=["nodeA"]',
                            "--systemid", "nodeB", "vg"]


def test_fsck_policy():
    assert fs.needs_fsck("auto", "ext2") and not fs.needs_fsck("auto", "ext4")
    assert not fs.needs_fsck("auto", "xfs") and fs.needs_fsck("force", "xfs") and not fs.needs_fsck("no", "ext2")


def test_fsck_rc_mapping():
    for rc in (0, 1):
        fs.fsck(FakeRun({"-t": (rc, "", "")}), "/dev/x", "ext4")
    run = FakeRun({"-t": (4, "fsck from util-linux 2.38.1\n/dev/x: UNEXPECTED INCONSISTENCY; RUN fsck "
                             "MANUALLY.\n", "")})
    with pytest.raises(fs.FsError) as err:
        fs.fsck(run, "/dev/x", "ext4", force=True)
    assert "rc 4" in err.value.reason and "UNEXPECTED INCONSISTENCY" in err.value.reason
    assert run.calls[0] == ["fsck", "-t", "ext4", "-p", "-f", "/dev/x"]
    run = FakeRun({"/dev/x": (2, "", "ERROR: The filesystem has valuable metadata changes in a log\n")})
    with pytest.raises(fs.FsError):
        fs.fsck(run, "/dev/x", "xfs")
    assert run.calls[0] == ["xfs_repair", "/dev/x"]


def test_metadata_lists_check_levels_and_parameters():
    import io
    from contextlib import redirect_stdout
    buf = io.StringIO()
    with redirect_stdout(buf):
        agent.LVMFilesystem().main(["LVMFilesystem", "meta-data"], {"OCF_RA_VERSION_MAJOR": "1",
                                                                     "OCF_RA_VERSION_MINOR": "1"})
    xml = buf.getvalue()
    for word in ("vg_access_mode", "run_fsck", "force_unmount", "stop_signals", "partial_activation",
                 'depth="10"', 'depth="20"'):
        assert word in xml, word
