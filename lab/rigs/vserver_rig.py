"""Rig for the VServer tests: guests of the util-vserver contract simulator (tests/fakes/vserver) in a private
config root, a bridge to carry their addresses, and a cleanup that leaves nothing behind.

Owns: /var/tmp/pyra-vs/<rig>/vservers (config dirs + busybox roots), the simulator's run state under
/run/pyra-vs/sim (ctx/XID, run/NAME; only entries of guests this rig built are touched), the bridge
pyra-vs-br0 (no ports; the addresses of interfaces/*/ip go there, from 198.18.206.0/24).
Guests are named pyra-vs-*. Nothing is killed by name: only the guest init PIDs the simulator recorded,
after checking they still are that process (start time) in another pid namespace.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the simulator is a test double of util-vserver and stays with the tests; this rig only runs it by path
SIM_BIN = HERE.parents[1] / "tests" / "fakes" / "vserver"
VSERVER = str(SIM_BIN / "vserver")
VKILL = str(SIM_BIN / "vkill")
VSTAT = str(SIM_BIN / "vserver-stat")
WORK = Path("/var/tmp/pyra-vs")
SIM_RUNDIR = Path(os.environ.get("PYRA_VS_RUNDIR", "/run/pyra-vs/sim"))
BRIDGE = "pyra-vs-br0"
NET = "198.18.206."


def _run(argv, timeout=30, check=False, env=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise RuntimeError("%s: rc %s: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


def ensure_bridge():
    if _run(["ip", "link", "show", BRIDGE]).returncode != 0:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    _run(["ip", "link", "set", BRIDGE, "up"], check=True)
    return BRIDGE


def remove_bridge():
    if _run(["ip", "link", "show", BRIDGE]).returncode == 0:
        _run(["ip", "link", "del", BRIDGE])


def bridge_addresses():
    r = _run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE])
    return [line.split()[3].split("/")[0] for line in r.stdout.splitlines() if " inet " in line]


def _proc_start(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s.rsplit(")", 1)[1].split()
    return fields[19], fields[0]


class Rig:
    """Guests in a private config root. ``confdir`` is what the agent's `confdir` parameter gets."""

    def __init__(self, tag, confdir=None):
        """``confdir``: put the config dirs there instead (e.g. on the cluster rig's shared storage)."""
        self.root = WORK / tag
        self.confdir = confdir or str(self.root / "vservers")
        self.names = []
        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(self.root)
        os.makedirs(self.confdir, exist_ok=True)

    def env(self):
        return dict(os.environ, PYRA_VS_CONFDIR=self.confdir)

    def cfg(self, name):
        return Path(self.confdir) / name

    def build(self, name, xid=None, ips=(), killseq=None, ignore_term=False, stop_hangs=False):
        argv = [VSERVER, name, "build"] + (["--context", str(xid)] if xid else [])
        _run(argv, check=True, env=self.env(), timeout=60)
        self.names.append(name)
        cfg = self.cfg(name)
        if ips:
            ensure_bridge()
            (cfg / "interfaces").mkdir(exist_ok=True)
            (cfg / "interfaces" / "dev").write_text(BRIDGE + "\n")
            for i, ip in enumerate(ips):
                (cfg / "interfaces" / str(i)).mkdir()
                (cfg / "interfaces" / str(i) / "ip").write_text(ip + "\n")
        if killseq:
            (cfg / "apps" / "init" / "killseq").write_text(killseq + "\n")
        self.fault(name, "ignore-term", ignore_term)
        self.fault(name, "stop-hangs", stop_hangs)
        return cfg

    def fault(self, name, what, on=True, value=""):
        """Switch one of the simulator's faults (CFGDIR/sim/<what>, holding ``value``) on or off."""
        d = self.cfg(name) / "sim"
        d.mkdir(exist_ok=True)
        if on:
            (d / what).write_text(value)
        elif (d / what).exists():
            (d / what).unlink()

    def sim(self, name, *cmd, timeout=30):
        return _run([VSERVER, str(self.cfg(name))] + list(cmd), timeout=timeout, env=self.env())

    def context(self, name):
        """The simulator's record of the guest's context: dict with xid, pid (guest init host PID)... or None."""
        try:
            xid = (SIM_RUNDIR / "run" / name).read_text().strip()
            text = (SIM_RUNDIR / "ctx" / xid).read_text()
        except OSError:
            return None
        rec = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        if rec.get("cfgdir") != str(self.cfg(name)):
            return None
        rec["xid"] = xid
        return rec

    def init_pid(self, name):
        """Host PID of the guest's init if it is alive (start time matches, not a zombie), else None."""
        rec = self.context(name)
        if not rec:
            return None
        pid = int(rec["pid"])
        st = _proc_start(pid)
        if st is None or st[0] != rec["start"] or st[1] in "ZX":
            return None
        return pid

    def crash(self, name):
        """SIGKILL the guest init from outside (the kernel then kills the whole pid namespace)."""
        pid = self.init_pid(name)
        assert pid, "guest %s is not running" % name
        os.kill(pid, signal.SIGKILL)
        self.wait_gone(name)

    def wait_gone(self, name, seconds=5.0):
        end = time.monotonic() + seconds
        while self.init_pid(name):
            if time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def cleanup(self):
        for name in self.names:
            if self.cfg(name).is_dir():
                for what in ("stop-hangs", "ignore-term"):
                    self.fault(name, what, False)
            pid = self.init_pid(name)
            if pid:
                os.kill(pid, signal.SIGKILL)
                self.wait_gone(name)
            if self.cfg(name).is_dir():
                self.sim(name, "stop")   # removes its addresses and run files
                shutil.rmtree(self.cfg(name), ignore_errors=True)
            rec = self.context(name)
            if rec:      # stale after a kill without util-vserver's cleanup (config dir gone)
                for p in (SIM_RUNDIR / "ctx" / rec["xid"], SIM_RUNDIR / "run" / name):
                    try:
                        p.unlink()
                    except OSError:
                        pass
            shutil.rmtree(SIM_RUNDIR / "guest" / name, ignore_errors=True)
            try:
                (SIM_RUNDIR / "lock" / ("vserver.%s.startup" % name)).unlink()
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
