"""Test-side handle on one vzctl simulator "node": its state root, its env, and cleanup.

``VzSim(root, flavor)`` creates containers (``create``), runs simulator commands (``vzctl``), reads the call
log and the workload counter, and ``cleanup()`` kills every container it started (by the PIDs recorded in
its own state, never by name). Used by the ManageVE unit tests and the bench row.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
VZCTL = str(HERE / "vzctl")


class VzSim:
    def __init__(self, root, flavor="legacy"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "flavor").write_text(flavor + "\n")
        self.flavor = flavor
        self.log = self.root / "calls.log"

    @property
    def env(self):
        """What an agent run needs in its environment to use this simulator node."""
        return {"VZCTL_SIM_ROOT": str(self.root), "VZCTL_SIM_LOG": str(self.log)}

    def vzctl(self, *args, check=True, timeout=60):
        env = dict(os.environ, **self.env)
        env.pop("VZCTL_SIM_FLAVOR", None)
        r = subprocess.run([VZCTL, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"vzctl {' '.join(map(str, args))} -> {r.returncode}: {r.stderr}")
        return r

    def create(self, ctid, name=None, **conf):
        args = ["create", ctid] + (["--name", name] if name else [])
        self.vzctl(*args)
        if conf:
            path = self.root / "ct" / ctid / "ve.conf"
            with open(path, "a") as fh:
                for key, value in conf.items():
                    fh.write(f'{key}="{value}"\n')
        return ctid

    def set_conf(self, ctid, **conf):
        path = self.root / "ct" / ctid / "ve.conf"
        lines = [l for l in path.read_text().splitlines() if l.split("=", 1)[0] not in conf]
        lines += [f'{k}="{v}"' for k, v in conf.items() if v is not None]
        path.write_text("\n".join(lines) + "\n")

    def status(self, ctid):
        return self.vzctl("status", ctid).stdout.strip()

    def state(self, ctid):
        return self.status(ctid).split(None, 4)[4]

    def pid(self, ctid):
        r = self.vzctl("__pid", ctid, check=False)
        return int(r.stdout) if r.returncode == 0 else None

    def counter(self, ctid):
        try:
            return int((self.root / "run" / ctid / "counter").read_text())
        except (OSError, ValueError):
            return None

    def calls(self):
        try:
            return self.log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def clear_calls(self):
        self.log.unlink(missing_ok=True)

    @contextmanager
    def hold_lock(self, ctid):
        """Hold the container lock like another vzctl would (vzctl answers 9 meanwhile)."""
        (self.root / "lock").mkdir(exist_ok=True)
        fd = os.open(self.root / "lock" / f"{ctid}.lck", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def cleanup(self):
        run = self.root / "run"
        if run.is_dir():
            for pidfile in run.glob("*/pid"):
                try:
                    pid = int(pidfile.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    continue
                # the init is a session/group leader that the simulator started: kill only that group, and
                # only if its environment says it is this simulator's container
                try:
                    envb = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    continue
                if b"PYRA_VE_SIM_CT=" in envb:
                    for sig in (signal.SIGKILL, signal.SIGCONT):
                        try:
                            os.killpg(pid, sig)
                        except (ProcessLookupError, PermissionError):
                            pass
        shutil.rmtree(self.root, ignore_errors=True)
