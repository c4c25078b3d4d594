"""Host helpers: commands with deadlines, mountinfo parsing, /proc holder walk, staged signals."""

import os
import signal
import subprocess
import sys
import time

import pytest

import harness
from pyra.host import command, mountinfo, processes
from pyra.ocf.deadline import Deadline


def test_run_captures_output_and_code():
    result = command.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 4"])
    assert (result.rc, result.stdout, result.stderr, result.timed_out) == (4, "out\n", "err\n", False)
    assert "sh failed (rc=4): err" in result.summary()


def test_run_is_bounded_by_the_deadline_and_kills_the_tree(tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    result = command.run(["/bin/sh", "-c", "sleep 30 & echo $! > %s; sleep 30 & echo $! >> %s; wait"
                          % (pids, pids)], deadline=Deadline(0.5))
    assert result.timed_out and result.rc is None
    assert time.monotonic() - started < 3
    for pid in map(int, pids.read_text().split()):                 # grandchildren killed too
        assert processes.wait_gone(pid, Deadline(2.0)), pid


AGENT_LIKE = """
import sys
sys.path.insert(0, sys.argv[1])
from pyra.host import command
command.run(["/bin/sh", "-c", "echo $$ > " + sys.argv[2] + "; exec sleep 60"], timeout=60)
"""


def test_pacemakers_group_kill_takes_the_agents_commands(tmp_path):
    """pacemaker-execd SIGKILLs the agent's whole process group on timeout: a command the agent runs must
    die with it, not outlive it (holding a lock the next action needs)."""
    lib = os.path.join(harness.REPO, "lib")
    pidfile = tmp_path / "child"
    agent = subprocess.Popen([sys.executable, "-c", AGENT_LIKE, lib, str(pidfile)], process_group=0)
    end = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < end:
        time.sleep(0.02)
    child = int(pidfile.read_text())
    assert os.getpgid(child) == agent.pid
    os.killpg(agent.pid, signal.SIGKILL)                             # what execd does on timeout
    agent.wait(5)
    end = time.monotonic() + 5
    while processes.alive(child) and time.monotonic() < end:
        time.sleep(0.02)
    assert not processes.alive(child)


def test_grandchild_holding_pipes_cannot_hang_us():
    # setsid moves the grandchild out of the group, like lxc-start's monitor: we must still return.
    started = time.monotonic()
    result = command.run(["/bin/sh", "-c", "setsid sleep 5 & sleep 30"], timeout=0.5)
    assert result.timed_out
    assert time.monotonic() - started < 4


def test_expired_deadline_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    d = Deadline(0)
    with pytest.raises(command.OutOfTime):
        command.run(["/bin/touch", str(marker)], deadline=d)
    assert not marker.exists()


def test_missing_program_and_check():
    result = command.run(["/nonexistent/tool", "x"])
    assert result.rc == command.NOT_FOUND and "not found" in result.summary()
    with pytest.raises(command.CommandFailed):
        command.run(["/bin/false"], check=True)


def test_no_shell_interpretation(tmp_path):
    marker = tmp_path / "pwned"
    result = command.run(["/bin/echo", "; touch %s" % marker, "$(touch %s)" % marker])
    assert result.ok and not marker.exists()


def test_input_is_passed():
    assert command.run(["/bin/cat"], input="ping\n").stdout == "ping\n"


def test_which_honours_ocf_tester(monkeypatch):
    assert command.which("sh") is not None
    monkeypatch.setenv("OCF_TESTER_FAIL_HAVE_BINARY", "1")
    assert command.which("sh") is None


SAMPLE = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "40 22 7:3 / /srv/my\\040data rw,relatime - xfs /dev/loop3 rw,attr2\n"
    "41 40 0:50 / /srv/my\\040data/sub rw - tmpfs tmp\\134fs rw\n"
    "42 22 7:4 / /mnt/ro ro,relatime shared:7 master:2 - ext4 /dev/loop4 ro\n"
    "garbage line\n")


def test_mountinfo_parse_with_escapes_and_optional_fields():
    mounts = mountinfo.parse(SAMPLE)
    assert len(mounts) == 4
    data = mounts[1]
    assert data.mount_point == "/srv/my data" and data.fstype == "xfs" and data.source == "/dev/loop3"
    assert (data.major, data.minor) == (7, 3)
    assert mounts[2].source == "tmp\\fs"
    assert mounts[3].read_only and not data.read_only
    assert [m.mount_point for m in mountinfo.submounts("/srv/my data", mounts)] == ["/srv/my data/sub"]
    assert mountinfo.mounts_at("/srv/my data/", mounts)[0].mount_id == 40


def test_mountinfo_reads_the_real_table():
    mounts = mountinfo.read()
    assert any(m.mount_point == "/" for m in mounts)
    assert any(m.mount_point == "/proc" for m in mounts)


def test_holders_finds_cwd_and_open_files(tmp_path):
    held = tmp_path / "held"
    held.mkdir()
    (held / "f").write_text("x")
    by_cwd = subprocess.Popen(["/bin/sleep", "30"], cwd=str(held))
    by_fd = subprocess.Popen([sys.executable, "-c", "import time; f=open(%r); time.sleep(30)" % str(held / "f")])
    outsider = subprocess.Popen(["/bin/sleep", "30"], cwd="/")
    try:
        deadline = Deadline(5)
        assert deadline.wait_for(lambda: by_fd.pid in processes.holders(str(held)), interval=0.05)
        found = processes.holders(str(held))
        assert by_cwd.pid in found and outsider.pid not in found and os.getpid() not in found
        with pytest.raises(ValueError):
            processes.holders("/")
    finally:
        for p in (by_cwd, by_fd, outsider):
            p.kill()
            p.wait()


def test_terminate_in_stages_escalates_to_kill():
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    assert stubborn.stdout.readline() == b"ready\n"
    started = processes.start_time(stubborn.pid)

    def find():
        stubborn.poll()  # reap, so a dead child does not linger as a zombie
        return [stubborn.pid] if processes.alive(stubborn.pid, started) else []

    left = processes.terminate_in_stages(find, Deadline(4), stages=((signal.SIGTERM, 0.25),
                                                                    (signal.SIGKILL, 1.0)))
    assert left == []
    assert stubborn.wait(timeout=2) == -signal.SIGKILL


def test_alive_distinguishes_recycled_pids():
    proc = subprocess.Popen(["/bin/sleep", "30"])
    try:
        # right after fork the child may not have exec'd yet: wait until its argv is the sleep's
        assert Deadline(5).wait_for(lambda: processes.cmdline(proc.pid) == ["/bin/sleep", "30"], interval=0.01)
        started = processes.start_time(proc.pid)
        assert processes.alive(proc.pid, started)
        assert not processes.alive(proc.pid, started + 1)
        assert processes.cmdline(proc.pid) == ["/bin/sleep", "30"]
        assert proc.pid in processes.find_by_cmdline(lambda argv: argv == ["/bin/sleep", "30"])
    finally:
        proc.kill()
        proc.wait()
    assert not processes.alive(proc.pid)


def test_large_output_and_input_do_not_deadlock():
    data = "x" * 300000
    result = command.run(["/bin/cat"], input=data, timeout=10)
    assert result.ok and len(result.stdout) == 300000


def test_child_gets_default_sigpipe():
    # Python ignores SIGPIPE; a child inheriting that would spin writing into closed pipes (`yes | head`).
    result = command.run(["/bin/grep", "SigIgn", "/proc/self/status"], timeout=5)
    ignored = int(result.stdout.split()[1], 16)
    assert not ignored & (1 << (13 - 1)), "SIGPIPE is ignored in the child"
    assert command.run(["/bin/sh", "-c", "yes | head -c 10"], timeout=5).stdout == "y\n" * 5


def test_child_that_closes_stdout_but_keeps_running_is_bounded():
    started = time.monotonic()
    result = command.run(["/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30"], timeout=0.5)
    assert result.timed_out and time.monotonic() - started < 3


def test_env_and_cwd_are_honoured(tmp_path):
    assert command.run(["/usr/bin/env"], env={"ONLY": "this"}).stdout == "ONLY=this\n"
    assert command.run(["/bin/pwd"], cwd=str(tmp_path)).stdout.strip() == str(tmp_path)
    assert command.run(["sh", "-c", "echo $0"], env={"PATH": "/bin"}).stdout == "sh\n"


def test_run_does_not_import_subprocess():
    code = ("import sys; sys.path.insert(0, %r); from pyra.host import command; "
            "r = command.run(['/bin/true']); print(r.rc, 'subprocess' in sys.modules)"
            % os.path.join(harness.REPO, "lib"))
    out = subprocess.run(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, timeout=30).stdout
    assert out == b"0 False\n"


class _Tools:
    """Answers for Pacemaker's CLI tools (unit level: the cluster tests run the real ones)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, timeout=None):
        self.calls.append(list(argv))
        rc, out = self.answers.get(argv[0], (1, ""))
        return command.CommandResult(argv, rc, out)


MON_NODES = """<pacemaker-result api-version="2.25" request="crm_mon --one-shot --output-as=xml"><nodes>
  <node name="n1" id="1" online="true" standby="false" unclean="false" type="member"/>
  <node name="n2" id="2" online="false" standby="false" unclean="true" type="member"/>
  <node name="r1" id="r1" online="true" standby="false" unclean="false" type="remote"/>
  <node name="r2" id="r2" online="false" standby="false" unclean="true" type="remote"/>
  <node name="r3" id="r3" online="false" standby="false" unclean="false" type="remote"/>
  <node name="g1" id="g1" online="true" standby="false" unclean="false" type="guest"/>
</nodes></pacemaker-result>"""


def test_cluster_online_members_and_node_name():
    from pyra.host import cluster
    tools = _Tools({"crm_node": (0, "n1\n"), "crm_mon": (0, MON_NODES)})
    # corosync members from crm_node; remote and guest nodes that are connected or not yet fenced from crm_mon
    # (r3, cleanly down, is not; n2 is a full node outside the partition: crm_node -p has the last word)
    assert cluster.online_members(tools) == {"n1", "r1", "r2", "g1"}
    assert [c[0] for c in tools.calls] == ["crm_node", "crm_mon"]
    assert cluster.online_members(_Tools({"crm_node": (0, "n1 n2\n"), "crm_mon": (0, "<x><nodes/></x>")})) == {
        "n1", "n2"}
    assert cluster.online_members(_Tools({"crm_node": (102, ""), "crm_mon": (0, MON_NODES)})) is None
    for mon in ((1, ""), (0, "not xml"), (0, "<pacemaker-result/>")):  # cannot tell who is up: None
        assert cluster.online_members(_Tools({"crm_node": (0, "n1\n"), "crm_mon": mon})) is None
    assert cluster.local_node_name(_Tools({}), {"OCF_RESKEY_CRM_meta_on_node": "n3"}) == "n3"
    assert cluster.local_node_name(_Tools({"crm_node": (0, "n4\n")}), {}) == "n4"
    assert cluster.local_node_name(_Tools({}), {}) == os.uname().nodename


def test_cluster_set_utilization_writes_only_changes():
    from pyra.host import cluster
    tools = _Tools({"crm_resource": (0, "")})
    got = cluster.set_utilization(tools, "vm1", {"cpu": "2", "memory": "512"}, {"cpu": "2"})
    assert got == {"cpu": "2", "memory": "512"}
    assert tools.calls == [["crm_resource", "--resource", "vm1", "--utilization", "--set-parameter", "memory",
                            "--parameter-value", "512"]]
    failing = _Tools({"crm_resource": (1, "")})
    assert cluster.set_utilization(failing, "vm1", {"cpu": "2"}, {}) == {}
