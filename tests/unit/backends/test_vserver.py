"""Unit tests of pyra.backends.vserver: util-vserver output parsers and the command contract (fake runner)."""
import os

import pytest

from pyra.backends import vserver as vs


class Res:
    def __init__(self, rc=0, stdout="", stderr="", timed_out=False):
        self.rc, self.stdout, self.stderr, self.timed_out = rc, stdout, stderr, timed_out


class FakeRun:
    """Answers by argv[1:] (program path stripped) from a table; records every call."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def __call__(self, argv, timeout=None):
        self.calls.append((argv, timeout))
        key = (os.path.basename(argv[0]),) + tuple(argv[1:])
        res = self.table.get(key)
        if res is None:
            raise AssertionError("unexpected call %r" % (key,))
        return res


@pytest.fixture
def bindir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for p in ("vserver", "vkill", "vserver-stat"):
        f = d / p
        f.write_text("#!/bin/sh\nexit 0\n")
        f.chmod(0o755)
    return d


STAT = """CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME
0       85    1.2G   300M   1m02s00   0m40s00   3h02m04 root server
1        2      0K     0K   0m00s00   0m00s00   0m00s00 monitoring server
4242     5     10M     2M   0m00s00   0m00s00      0m03s00 web1
49152    0      0K     0K   0m00s00   0m00s00      0m00s00 dead
49153    3     10M     2M   0m00s00   0m00s00      0m03s00 name with space
"""


def test_parse_vserver_stat_skips_host_and_spectator():
    assert vs.parse_vserver_stat(STAT) == [(4242, 5, "web1"), (49152, 0, "dead"), (49153, 3, "name with space")]


def test_parse_vserver_stat_garbage():
    assert vs.parse_vserver_stat("") == []
    assert vs.parse_vserver_stat("CTX PROC\nfoo bar\n12\n") == []


@pytest.mark.parametrize("text,expect", [
    ("15 5 9", (15, 5.0, 9)),
    ("9", (9,)),
    ("15 0.5 2 1 9", (15, 0.5, 2, 1.0, 9)),
    ("", None), ("15 5", None), ("TERM 5 KILL", None), ("15 -1 9", None), (None, None),
])
def test_parse_killseq(text, expect):
    assert vs.parse_killseq(text) == expect


FIB = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
"""
INET6 = "00000000000000000000000000000001 01 80 10 80       lo\n20010db8000000000000000000000005 08 40 00 80 br0\n"


def test_fib_trie_only_host_local_leaves():
    assert vs.parse_fib_trie(FIB) == {"127.0.0.1", "192.0.2.2"}


def test_missing_addresses_v4_v6():
    got = vs.missing_addresses(["192.0.2.2", "192.0.2.3", "127.0.0.5", "2001:db8::5", "2001:db8::6"],
                               fib_trie=FIB, if_inet6=INET6)
    # 127.0.0.5 is covered by 127/8 but not a configured address: util-vserver adds /32s, so it must be listed
    assert got == ["192.0.2.3", "127.0.0.5", "2001:db8::6"]


def test_configured_addresses(tmp_path):
    base = tmp_path / "interfaces"
    for i, (ip, flag) in enumerate([("10.0.0.1", None), ("10.0.0.2/24", None), ("10.0.0.3", "disabled"),
                                    ("10.0.0.4", "nodev"), ("", None)]):
        d = base / str(i)
        d.mkdir(parents=True)
        (d / "ip").write_text(ip + "\n")
        if flag:
            (d / flag).write_text("")
    (base / "dev").write_text("eth0\n")  # a global default, not an interface
    assert vs.configured_addresses(str(tmp_path)) == ["10.0.0.1", "10.0.0.2"]
    assert vs.configured_addresses(str(tmp_path / "nope")) == []


def test_target_is_name_for_default_confdir_and_path_otherwise(bindir):
    assert vs.VServer("web1", None).target == "web1"
    assert vs.VServer("web1", None, confdir="/etc/vservers/").target == "web1"
    assert vs.VServer("web1", None, confdir="/srv/vs").target == "/srv/vs/web1"


def test_running_codes(bindir):
    v = vs.VServer("web1", FakeRun({("vserver", "web1", "running"): Res(0)}), vserver_cmd=str(bindir / "vserver"))
    assert v.is_running(timeout=3) is True
    v.run.table[("vserver", "web1", "running")] = Res(1)
    assert v.is_running() is False
    v.run.table[("vserver", "web1", "running")] = Res(5, stderr="Can not find a vserver-setup at '/etc/vservers/web1/'.")
    with pytest.raises(vs.ConfigMissing):
        v.is_running()
    v.run.table[("vserver", "web1", "running")] = Res(2, stderr="Usage: ...")
    with pytest.raises(vs.VServerError):
        v.is_running()
    v.run.table[("vserver", "web1", "running")] = Res(None, timed_out=True)
    with pytest.raises(vs.VServerError, match="in time"):
        v.is_running()
    v.run.table[("vserver", "web1", "running")] = Res(127)
    with pytest.raises(vs.VServerError, match="127"):
        v.is_running()


def test_status_codes(bindir):
    v = vs.VServer("web1", FakeRun({("vserver", "web1", "status"):
                                    Res(0, "Vserver 'web1' is running at context '4242'\nNumber of processes: 5\n")}),
                   vserver_cmd=str(bindir / "vserver"))
    assert v.status() == (True, "Vserver 'web1' is running at context '4242'")
    v.run.table[("vserver", "web1", "status")] = Res(3, "Vserver 'web1' is stopped\n")
    assert v.status() == (False, "Vserver 'web1' is stopped")
    v.run.table[("vserver", "web1", "status")] = Res(1, "", "boom")
    with pytest.raises(vs.VServerError, match="boom"):
        v.status()


def test_sibling_programs_from_vserver_cmd_dir(bindir):
    run = FakeRun({("vserver-stat",): Res(0, STAT), ("vkill", "--xid", "4242", "-s", "9"): Res(0)})
    v = vs.VServer("web1", run, vserver_cmd=str(bindir / "vserver"))
    assert v.find_context() == 4242
    assert v.find_context(xid=4242) == 4242
    assert v.find_context(xid=49152) is None      # zero processes: not running
    assert vs.VServer("dead", run, vserver_cmd=str(bindir / "vserver")).find_context() is None
    assert v.kill_context(4242, 9) is True
    assert run.calls[0][0][0] == str(bindir / "vserver-stat")


def test_tool_missing(tmp_path):
    v = vs.VServer("web1", FakeRun({}), vserver_cmd=str(tmp_path / "nope"))
    with pytest.raises(vs.ToolMissing):
        v.is_running()
    v = vs.VServer("web1", FakeRun({}), vserver_cmd="pyra-vs-no-such-program")
    with pytest.raises(vs.ToolMissing):
        v.program("vkill")


def test_config_files(tmp_path):
    cfg = tmp_path / "web1"
    (cfg / "apps" / "init").mkdir(parents=True)
    v = vs.VServer("web1", None, confdir=str(tmp_path))
    assert v.config_present()
    assert v.static_xid() is None and v.running_xid() is None
    assert v.killseq() == vs.DEFAULT_KILLSEQ
    (cfg / "context").write_text("4242\n")
    (tmp_path / "runfile").write_text("4242\n")
    os.symlink(str(tmp_path / "runfile"), str(cfg / "run"))
    (cfg / "apps" / "init" / "killseq").write_text("15 1 9\n")
    assert v.static_xid() == 4242 and v.running_xid() == 4242
    assert v.killseq() == (15, 1.0, 9)
    os.unlink(str(tmp_path / "runfile"))   # the run link dangles when stopped
    assert v.running_xid() is None
    assert not vs.VServer("web2", None, confdir=str(tmp_path)).config_present()
