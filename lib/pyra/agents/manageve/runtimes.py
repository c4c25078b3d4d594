"""The container runtimes ManageVE drives, behind one small interface: query() -> (state, detail), start,
stop with escalation, checkpoint and restore. ``VzRuntime`` speaks vzctl (pyra.backends.vzctl), ``LxcRuntime``
the lxc-* tools (pyra.backends.lxc); the agent reasons only about the runtime-neutral states below.
"""

import os

from pyra.ocf.errors import Failure, MissingEnvironment

# the runtime-neutral states the agent reasons about
RUNNING = "running"
PAUSED = "paused"
DOWN = "down"
MISSING = "missing"   # the container is not defined on this node (deleted / not in this lxcpath)


class VzRuntime:
    """The vzctl runtime: one `vzctl status` per query."""

    name = "vzctl"

    def __init__(self, op, veid, binary):
        from pyra.backends.vzctl import Vzctl
        self.op = op
        self.veid = veid
        self.vz = Vzctl(op.run, op.deadline, binary)

    def query(self):
        """(state, detail) with state one of RUNNING PAUSED DOWN MISSING."""
        from pyra.backends import vzctl
        status, result = self.vz.status(self.veid)
        if status is None:
            if result.rc == 127:
                raise MissingEnvironment("vzctl (%s) is not installed on this node" % self.vz.binary)
            if result.rc == 2 and "Bad container ID" in result.stderr:
                # a name vzctl does not know here: the container is not defined on this node
                return MISSING, "container %s is not known to vzctl here" % self.veid
            raise Failure("cannot read the container state: %s" % result.summary())
        if not status.exists:
            return MISSING, "container %s does not exist here (vzctl: deleted)" % self.veid
        if status.state == vzctl.RUNNING:
            return RUNNING, "running"
        if status.state == vzctl.PAUSED:
            return PAUSED, "container %s is paused (checkpoint-suspended); resume it with vzctl resume" % self.veid
        if status.state == vzctl.SUSPENDED:
            return DOWN, "suspended (a dump exists), not running"
        return DOWN, "down"

    def start(self, wait):
        from pyra.backends import vzctl
        if self.query()[0] == PAUSED:
            result = self.vz.restore(self.veid)  # vzctl resume of a paused container continues it
        else:
            result = self.vz.start(self.veid, wait=wait)
        if result.rc not in (0, vzctl.RC_RUNNING) or result.timed_out:
            raise Failure(result.summary())

    def stop(self, graceful_s):
        """Graceful `vzctl stop` for at most graceful_s, then `vzctl stop --fast` (kill) in what is left."""
        result = self.vz.stop(self.veid, timeout=max(1.0, graceful_s))
        if result.ok:
            return
        self.op.log.warning("graceful stop did not finish (%s); killing the container", result.status_text())
        result = self.vz.stop(self.veid, fast=True)
        if not result.ok:
            raise Failure(result.summary())

    def checkpoint(self, dumpfile):
        result = self.vz.chkpnt(self.veid, dumpfile)
        if not result.ok:
            raise Failure("checkpoint failed, the container stays here: %s" % result.summary())

    def restore(self, dumpfile):
        from pyra.backends import vzctl
        result = self.vz.restore(self.veid, dumpfile)
        if result.rc == vzctl.RC_RUNNING:
            return
        if not result.ok:
            raise Failure("restore failed: %s" % result.summary())

    def default_dumpfile(self, op):
        return None  # vzctl's own default (Dump.<CTID> in its dump directory)

    def checkpoint_supported(self):
        return None


class LxcRuntime:
    """The LXC runtime: one `lxc-info -sH` per query."""

    name = "lxc"

    def __init__(self, op, veid, lxc_path, lxc_config):
        from pyra.backends.lxc import Lxc
        self.op = op
        self.veid = veid
        self.lxc = Lxc(op.run, op.deadline, veid, lxc_path, lxc_config)

    def query(self):
        from pyra.backends import lxc
        state, result = self.lxc.state()
        if state is None:
            if result.rc == 127:
                raise MissingEnvironment("LXC (lxc-info) is not installed on this node")
            raise Failure("cannot read the container state: %s" % result.summary())
        if state == lxc.MISSING and self.lxc.config:
            # started with lxc-start -f: LXC only knows the container while it runs
            if os.path.isfile(self.lxc.config):
                return DOWN, "stopped"
            return MISSING, "lxc_config %s is not visible on this node" % self.lxc.config
        if state == lxc.MISSING:
            return MISSING, "container %s is not defined in %s" % (self.veid, self.lxc.lxcpath or "the lxcpath")
        if state == lxc.RUNNING:
            return RUNNING, "running"
        if state == lxc.FROZEN:
            return PAUSED, "container %s is frozen; thaw it with lxc-unfreeze" % self.veid
        if state == lxc.STOPPED:
            return DOWN, "stopped"
        raise Failure("container %s is %s" % (self.veid, state))

    def start(self, wait):
        from pyra.backends import lxc
        state, _ = self.lxc.state()
        if state == lxc.FROZEN:
            result = self.op.run(self.lxc._argv("lxc-unfreeze"))
            if not result.ok:
                raise Failure(result.summary())
            return
        result = self.lxc.start()
        if not result.ok:
            raise Failure(result.summary())
        found = self.op.deadline.wait_for(lambda: self.lxc.state()[0] in (lxc.RUNNING, lxc.STOPPED),
                                          interval=0.02, max_interval=0.25)
        if not found:
            raise Failure("container %s did not reach RUNNING before the deadline" % self.veid)

    def stop(self, graceful_s):
        from pyra.backends import lxc
        result = self.lxc.stop(graceful_s)
        if result.ok or result.rc == lxc.RC_STOP_NOT_RUNNING:
            return
        self.op.log.warning("lxc-stop -t did not stop the container (%s); killing it", result.status_text())
        result = self.lxc.kill()
        if not result.ok and result.rc != lxc.RC_STOP_NOT_RUNNING:
            raise Failure(result.summary())

    def _logfile(self):
        os.makedirs(self.op.env.rsctmp, 0o755, exist_ok=True)
        return os.path.join(self.op.env.rsctmp, "pyra-ve-%s.lxc.log" % self.veid.replace("/", "_"))

    def _log_tool_output(self, logfile):
        try:
            with open(logfile) as handle:
                lines = [line.strip() for line in handle if line.strip()]
            os.unlink(logfile)
        except OSError:
            return ""
        for line in lines[-5:]:
            self.op.log.info("lxc-checkpoint: %s", line)
        return lines[-1] if lines else ""

    def checkpoint(self, dumpdir):
        os.makedirs(dumpdir, 0o700, exist_ok=True)
        logfile = self._logfile()
        result = self.lxc.checkpoint(dumpdir, logfile)
        last = self._log_tool_output(logfile)
        if not result.ok:
            raise Failure("checkpoint failed, the container stays here: %s%s" % (
                result.summary(), (": " + last[-60:]) if last else ""))

    def restore(self, dumpdir):
        logfile = self._logfile()
        result = self.lxc.restore(dumpdir, logfile)
        last = self._log_tool_output(logfile)
        if not result.ok:
            raise Failure("restore failed: %s%s" % (result.summary(), (": " + last[-60:]) if last else ""))

    def default_dumpfile(self, op):
        return self.lxc.default_dumpdir()

    def checkpoint_supported(self):
        """None when CRIU can checkpoint here, else the reason why not."""
        from pyra.backends.lxc import CRIU_MIN, criu_version
        from pyra.host.command import which
        path, version = criu_version(self.op.run, which)
        if not path:
            return "migration=checkpoint needs CRIU >= 4.1, and criu is not installed; use migration=restart"
        if version is None or version[:2] < CRIU_MIN:
            shown = ".".join(str(v) for v in version) if version else "unknown"
            return ("migration=checkpoint needs CRIU >= 4.1 (%s is %s, which cannot dump on this kernel); "
                    "use migration=restart" % (path, shown))
        return None
