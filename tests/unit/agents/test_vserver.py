"""ocf:pyra:VServer decisions without root: the agent runs against a scripted stub of util-vserver's programs
(exit codes from files), so every code path of the policy can be reached in milliseconds."""
import os
import subprocess

import pytest

from harness import REPO, run_agent

AGENT = "VServer"

STUB = """#!/bin/sh
d=$(dirname "$0"); prog=$(basename "$0")
echo "$prog $*" >> "$d/calls"
case $prog in
    vserver) key=$2 ;;
    vserver-stat) key=stat; cat "$d/stat.out" 2>/dev/null ;;
    vkill) key=vkill ;;
esac
[ -f "$d/err.$key" ] && cat "$d/err.$key" >&2
exit $(cat "$d/rc.$key" 2>/dev/null || echo 0)
"""
STAT_HEADER = "CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME\n"


class Stub:
    def __init__(self, root):
        self.bin = root / "bin"
        self.bin.mkdir()
        for prog in ("vserver", "vserver-stat", "vkill"):
            p = self.bin / prog
            p.write_text(STUB)
            p.chmod(0o755)
        self.confdir = root / "vservers"
        (self.confdir / "web1").mkdir(parents=True)
        self.rc("running", 1)
        self.stat("")

    def rc(self, key, code):
        (self.bin / ("rc." + key)).write_text("%d\n" % code)

    def stat(self, lines):
        (self.bin / "stat.out").write_text(STAT_HEADER + lines)

    def calls(self):
        p = self.bin / "calls"
        return p.read_text().splitlines() if p.exists() else []

    def params(self, **extra):
        p = {"name": "web1", "confdir": str(self.confdir), "vserver_cmd": str(self.bin / "vserver")}
        p.update(extra)
        return p


@pytest.fixture
def stub(tmp_path):
    return Stub(tmp_path)


def run(stub, action, rsctmp, interval=None, timeout_ms=20000, check_level=None, **extra):
    return run_agent(AGENT, action, stub.params(**extra), interval=interval, timeout_ms=timeout_ms,
                     check_level=check_level, rsctmp=rsctmp, instance="vs-web1")


def test_monitor_is_one_running_call(stub, rsctmp):
    stub.rc("running", 0)
    assert run(stub, "monitor", rsctmp, interval=10000).rc == 0
    assert stub.calls() == ["vserver %s/web1 running" % stub.confdir]


def test_probe_codes(stub, rsctmp):
    assert run(stub, "monitor", rsctmp).rc == 7
    stub.rc("running", 0)
    assert run(stub, "monitor", rsctmp).rc == 0
    stub.rc("running", 5)                       # config vanished between our check and util-vserver's
    assert run(stub, "monitor", rsctmp).rc == 7
    stub.rc("running", 2)
    r = run(stub, "monitor", rsctmp, interval=10000)
    assert r.rc == 1 and "usage" in r.exit_reason, r


def test_default_confdir_passes_the_bare_name(stub, rsctmp):
    stub.rc("running", 1)
    assert run(stub, "monitor", rsctmp, confdir="/etc/vservers").rc == 7   # no /etc/vservers/web1 here
    assert stub.calls() == [] or stub.calls()[-1].startswith("vserver-stat")
    os.rename(stub.confdir / "web1", stub.confdir / "keep")
    assert run(stub, "monitor", rsctmp).rc == 7
    assert run(stub, "stop", rsctmp).rc == 0
    assert run(stub, "start", rsctmp).rc == 5


def test_depth_10_runs_status(stub, rsctmp):
    stub.rc("running", 0)
    stub.rc("status", 3)
    r = run(stub, "monitor", rsctmp, interval=60000, check_level=10)
    assert r.rc == 1 and "status" in r.exit_reason, r
    stub.rc("status", 0)
    assert run(stub, "monitor", rsctmp, interval=60000, check_level=10).rc == 0
    assert stub.calls()[-2:] == ["vserver %s/web1 running" % stub.confdir, "vserver %s/web1 status" % stub.confdir]


def test_start_that_never_comes_up_fails_inside_the_deadline(stub, rsctmp):
    stub.rc("running", 1)
    stub.rc("start", 0)
    r = run(stub, "start", rsctmp, timeout_ms=3000)
    assert r.rc == 1 and "not running after" in r.exit_reason, r
    assert r.elapsed < 3.0
    stub.rc("start", 1)
    (stub.bin / "err.start").write_text("Failed to start vserver 'web1'\n")
    r = run(stub, "start", rsctmp)
    assert r.rc == 1 and "Failed to start vserver 'web1'" in r.exit_reason, r


def test_stop_escalates_to_vkill_and_cleans_up(stub, rsctmp):
    stub.rc("running", 0)
    stub.rc("stop", 1)                        # util-vserver gave up: "still running unexpectedly"
    stub.stat("4242     5     0K     0K   0m00s00   0m00s00      0m03s00 web1\n")
    (stub.confdir / "web1" / "context").write_text("4242\n")
    r = run(stub, "stop", rsctmp, timeout_ms=4000)
    # the stub's context never dies: KILL did not help, so the stop must fail (and Pacemaker fences)
    assert r.rc == 1 and "survived SIGKILL" in r.exit_reason, r
    assert "vkill --xid 4242 -s 9" in stub.calls()
    assert not any(c.startswith("vkill --xid 4242 -s 15") for c in stub.calls())   # util-vserver sent TERM


def test_stop_without_config_or_tools(stub, rsctmp):
    os.rename(stub.confdir / "web1", stub.confdir / "keep")
    assert run(stub, "stop", rsctmp).rc == 0                                  # nothing runs by that name
    stub.stat("4242     5     0K     0K   0m00s00   0m00s00      0m03s00 other\n")
    assert run(stub, "stop", rsctmp).rc == 0
    assert not any(c.startswith("vkill") for c in stub.calls())
    assert run(stub, "stop", rsctmp, vserver_cmd=str(stub.bin / "nope")).rc == 0
    assert run(stub, "monitor", rsctmp, vserver_cmd=str(stub.bin / "nope")).rc == 7


def test_meta_data_validates_against_the_dtd_and_matches_the_golden_file():
    env = {"PATH": "/usr/bin:/bin", "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "0"}
    out = subprocess.run([os.path.join(REPO, "agents", AGENT), "meta-data"], env=env, capture_output=True,
                         check=True).stdout
    r = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/resource-agents/ra-api-1.dtd", "-"],
                       input=out, capture_output=True)
    assert r.returncode == 0, r.stderr
    env["OCF_RA_VERSION_MINOR"] = "1"
    out = subprocess.run([os.path.join(REPO, "agents", AGENT), "meta-data"], env=env, capture_output=True,
                         check=True).stdout.decode()
    with open(os.path.join(REPO, "metadata", AGENT + ".xml")) as f:
        assert out == f.read()
