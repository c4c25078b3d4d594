"""VServer: the OCF semantics of a Linux-VServer guest managed through util-vserver (``vserver NAME ...``).

Owns what start, stop and monitor mean for a vserver; everything about util-vserver's programs, exit codes and
config dir is in ``pyra.backends.vserver``.

- start: the config dir ``CONFDIR/NAME`` must be visible here (else 5: it may live on storage that is not
  mounted on this node yet; never 6). The identity (name, config dir, XID, addresses) is recorded before
  acting, then ``vserver NAME start`` gets ``start_timeout_share`` of the budget, and the start is confirmed
  with ``vserver NAME running`` and, with ``check_ip``, the configured addresses being up here.
- stop: ``vserver NAME stop`` gets ``stop_timeout_share`` of the budget; if the guest is still running after
  it (or it hung), the agent runs the contract's kill sequence itself (``apps/init/killseq``, shortened to fit
  the deadline, always ending with KILL) through ``vkill --xid``, confirms with ``vserver-stat``, and runs
  ``vserver NAME stop`` once more so util-vserver removes the addresses. With the config dir gone the guest
  is found by its recorded XID (or its name) in ``vserver-stat``, killed the same way, and the recorded
  addresses are removed with ``ip addr del``. A missing config dir never fails a stop.
- monitor: ``vserver NAME running`` (0/1, one process, no output parsing); depth 10 adds ``vserver NAME status``
  and the address check. Crash (1) vs clean stop (7) comes from the state record (DESIGN §5). A probe on a
  node without the config dir answers 7, unless a context of this vserver really runs here (then 0).
"""

from pyra.backends import vserver as backend
from pyra.ocf import checks, codes
from pyra.agents.base import PyraAgent
from pyra.ocf.agent import Action
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment
from pyra.ocf.params import BOOLEAN, FLOAT, Param, Schema

SIGKILL = 9
POLL = 0.1


class VServer(PyraAgent):
    name = "VServer"
    shortdesc = "Manages a Linux-VServer guest (util-vserver)"
    longdesc = (
        "Starts, stops and monitors a Linux-VServer guest with util-vserver's 'vserver NAME start|stop|running|"
        "status'. The guest's configuration directory (confdir/name) may live on shared storage that another "
        "resource mounts first (e.g. a group LVMFilesystem then VServer): on a node where it is not visible a "
        "probe reports the guest stopped and a start fails with 'not installed' (5), never 'not configured'. "
        "A stop that util-vserver cannot finish in time is completed by the agent with util-vserver's kill "
        "sequence (vkill on the guest's context), also when the configuration directory is already gone. "
        "Monitor depth 10 also runs 'vserver NAME status' and checks that the addresses of interfaces/*/ip are "
        "up on this node.")
    schema = Schema(
        Param("name", required=True, unique=True, checks=[checks.simple_name],
              shortdesc="Name of the vserver",
              longdesc="The vserver's name: its configuration is the directory confdir/name."),
        Param("confdir", default=backend.DEFAULT_CONFDIR, checks=[checks.absolute_path],
              shortdesc="util-vserver configuration root",
              longdesc="Directory holding the vservers' configuration directories. With the default the "
                       "vserver is named on util-vserver's command line; otherwise its configuration directory "
                       "path is passed (util-vserver accepts both)."),
        Param("vserver_cmd", default="vserver", checks=[checks.single_line],
              shortdesc="The vserver command",
              longdesc="Path or name (searched on PATH) of util-vserver's 'vserver' command. vkill and "
                       "vserver-stat are looked up in the same directory when this is a path, else on PATH."),
        Param("start_timeout_share", type=FLOAT, default="0.8", checks=[checks.in_range(0.1, 0.95)], advanced=True,
              shortdesc="Share of the start timeout for 'vserver start'",
              longdesc="Fraction (0.1-0.95) of the start operation's time given to 'vserver NAME start'; the "
                       "rest is kept to confirm that the guest runs and its addresses are up."),
        Param("stop_timeout_share", type=FLOAT, default="0.6", checks=[checks.in_range(0.1, 0.95)], advanced=True,
              shortdesc="Share of the stop timeout for 'vserver stop'",
              longdesc="Fraction (0.1-0.95) of the stop operation's time given to 'vserver NAME stop'; if the "
                       "guest still runs after that, the agent kills its context (TERM, then KILL) in the rest."),
        Param("check_ip", type=BOOLEAN, default=True,
              shortdesc="Check the guest's addresses",
              longdesc="After start and in depth-10 monitors, require the addresses configured in "
                       "interfaces/*/ip (not disabled, not nodev) to be up on this node."),
    )
    actions = (
        Action("start", timeout=60),
        Action("stop", timeout=60),
        Action("monitor", timeout=20, interval=10),
        Action("monitor", timeout=30, interval=60, depth=10),
    )
    check_levels = (0, 10)

    identity_keys = ("name", "cfgdir")

    def identify(self, op):
        name = op.params.name
        if name is None or name in (".", ".."):
            raise ConfigError("parameter 'name' is missing or invalid")
        return {"name": name, "cfgdir": backend.VServer(name, op.run, confdir=op.params.confdir).cfgdir}

    # -- helpers -----------------------------------------------------------------------------------------
    def _vs(self, op):
        """The guest of this instance's identity (Operation.identity: the parameters, or what this node
        recorded when it started the guest)."""
        ident = op.identity()
        name = ident["name"]
        confdir = ident["cfgdir"][: -len(name) - 1] or "/"
        return backend.VServer(name, op.run, confdir=confdir, vserver_cmd=op.params.vserver_cmd)

    @staticmethod
    def _call(fn, *args, **kwargs):
        """Run a backend call, turning its errors into OCF conditions."""
        try:
            return fn(*args, **kwargs)
        except backend.ToolMissing as err:
            raise MissingEnvironment(str(err)) from None
        except backend.ConfigMissing as err:
            raise MissingEnvironment(str(err)) from None
        except backend.VServerError as err:
            raise Failure(str(err)) from None

    @staticmethod
    def _quick(op, seconds=10.0):
        """Timeout for one short query: at most ``seconds`` and never past the deadline."""
        return min(seconds, max(0.1, op.deadline.remaining()))

    @staticmethod
    def _failed(vs, command, res):
        """A short reason for a failed ``vserver NAME command`` (the name, not the config dir path)."""
        if res is None:
            return "'vserver %s %s' failed" % (vs.name, command)
        if res.timed_out:
            return "'vserver %s %s' timed out after %.0f s" % (vs.name, command, res.duration)
        lines = [line.strip() for line in (res.stderr or res.stdout or "").splitlines() if line.strip()]
        return "'vserver %s %s' failed (rc=%s)%s" % (vs.name, command, res.rc, ": " + lines[-1] if lines else "")

    def _identity(self, vs, xid=None):
        """What start records: the guest's name and config dir, its XID and addresses (to find and clean
        up after it when its config dir is gone)."""
        ident = {"name": vs.name, "cfgdir": vs.cfgdir}
        xid = xid or vs.static_xid()
        if xid:
            ident["xid"] = xid
        ifaces = backend.encode_interfaces(vs.interfaces())
        if ifaces:
            ident["interfaces"] = ifaces
        return ident

    def _require_addresses(self, op, vs, wait):
        """Failure unless the guest's configured addresses are up here (after start: waiting up to 5 s)."""
        addresses = vs.addresses()
        if not addresses:
            return
        missing = backend.missing_addresses(addresses)
        if wait:
            stage = op.deadline.within(5.0)
            while missing and not stage.expired():
                stage.sleep(POLL)
                missing = backend.missing_addresses(addresses)
        if missing:
            raise Failure("vserver %s runs but its addresses are not up here: %s" % (vs.name, " ".join(missing)))

    # -- actions ----------------------------------------------------------------------------------------
    def validate(self, op):
        if op.params.name in (".", ".."):
            raise ConfigError("parameter 'name' must be a vserver name")
        if op.depth >= 10:
            vs = self._vs(op)
            self._call(vs.program)
            if not vs.config_present():
                raise MissingEnvironment("vserver config dir %s not found on this node (storage not mounted?)"
                                         % vs.cfgdir)

    def start(self, op):
        vs = self._vs(op)
        if self._call(vs.is_running, timeout=self._quick(op)):
            op.record_start(self._identity(vs, vs.running_xid()))
            op.log.info("vserver %s is already running", vs.name)
        else:
            op.record_start(self._identity(vs))
            share = op.params.start_timeout_share
            res = self._call(vs.start, timeout=max(0.1, op.deadline.remaining() * share))
            if res.timed_out:
                op.log.warning("%s; checking whether the guest came up anyway", self._failed(vs, "start", res))
            elif res.rc != 0:
                if not self._call(vs.is_running, timeout=self._quick(op)):
                    raise Failure(self._failed(vs, "start", res))
                op.log.warning("%s, but the guest runs", self._failed(vs, "start", res))
            up = op.deadline.wait_for(lambda: op.deadline.remaining() > 0.05 and self._call(
                vs.is_running, timeout=self._quick(op)), interval=POLL, max_interval=0.5)
            if not up:
                raise Failure("vserver %s is not running after 'vserver start'%s" % (
                    vs.name, " (it timed out)" if res.timed_out else ""))
            xid = vs.running_xid()
            if xid:
                op.state.update(**{"id.xid": xid})
        if op.params.check_ip:
            self._require_addresses(op, vs, wait=True)
        return codes.SUCCESS

    def monitor(self, op):
        vs = self._vs(op)
        if not vs.config_present():
            return self._monitor_without_config(op, vs)
        try:
            running = vs.is_running(timeout=self._quick(op))
        except backend.ConfigMissing:
            return self._monitor_without_config(op, vs)
        except backend.ToolMissing as err:
            raise MissingEnvironment(str(err)) from None
        except backend.VServerError as err:
            raise Failure(str(err)) from None
        if not running:
            return op.not_running("vserver %s is not running" % vs.name)
        if op.check_level >= 10:
            really, line = self._call(vs.status, timeout=self._quick(op))
            if not really:
                raise Failure("vserver %s: 'running' says running but 'status' says: %s" % (vs.name, line))
            if op.params.check_ip:
                self._require_addresses(op, vs, wait=False)
        return codes.SUCCESS

    def _monitor_without_config(self, op, vs):
        """The config dir is not visible: look for the guest's context by its recorded XID or its name."""
        ident = op.state.identity() if op.has_record() else {}
        why = "vserver config dir %s not found on this node" % vs.cfgdir
        xid = ident.get("xid")
        try:
            found = vs.find_context(int(xid) if xid and xid.isdigit() else None, timeout=self._quick(op))
        except backend.ToolMissing:
            raise MissingEnvironment(why) from None
        except backend.VServerError as err:
            if ident:
                raise Failure("%s, and vserver-stat failed: %s" % (why, err)) from None
            raise MissingEnvironment(why) from None
        if found is not None:
            if op.is_probe:
                op.log.warning("%s, but its context %s runs here", why, found)
                return codes.SUCCESS
            raise Failure("%s while the guest runs (context %s): the storage under it is gone" % (why, found))
        if ident:
            return op.not_running(why)
        raise MissingEnvironment(why)

    def stop(self, op):
        vs = self._vs(op)
        has_record = op.has_record()
        ident = op.state.identity() if has_record else {}
        try:
            vs.program()
        except backend.ToolMissing as err:
            # No util-vserver here: nothing can run here unless we started it (policy: 0 without record)
            raise MissingEnvironment(str(err)) from None
        if vs.config_present():
            self._stop_with_config(op, vs, ident)
        else:
            self._stop_without_config(op, vs, ident)
        op.state.record_stop()
        return codes.SUCCESS

    def _stop_with_config(self, op, vs, ident):
        share = op.params.stop_timeout_share
        try:
            res = vs.stop(timeout=max(0.1, op.deadline.remaining() * share))
        except backend.ConfigMissing:
            return self._stop_without_config(op, vs, ident)
        except backend.VServerError as err:
            op.log.warning("%s", err)
            res = None
        if res is not None and res.ok:
            try:
                if not vs.is_running(timeout=self._quick(op)):
                    return
            except backend.ConfigMissing:
                return self._stop_without_config(op, vs, ident)
            except backend.VServerError as err:
                op.log.warning("%s", err)
        why = self._failed(vs, "stop", res)
        op.log.warning("%s; killing the context of vserver %s", why, vs.name)
        xid = vs.running_xid() or (int(ident["xid"]) if ident.get("xid", "").isdigit() else None)
        found = self._call(vs.find_context, xid, timeout=self._quick(op))
        if found is None and xid is not None:
            found = self._call(vs.find_context, None, timeout=self._quick(op))
        if found is not None:
            # util-vserver already ran its kill sequence unless its stop hung or failed to run
            self._kill_context(op, vs, found, graceful=res is None or res.timed_out)
        if self._call(vs.is_running, timeout=self._quick(op)):
            raise Failure("vserver %s still runs after %s and the kill sequence" % (vs.name, why))
        # util-vserver's own cleanup (addresses, mounts): `stop` of a stopped vserver does it and exits 0
        try:
            res = vs.stop(timeout=self._quick(op, 15.0))
            if not res.ok:
                op.log.warning("cleanup after the kill: %s", self._failed(vs, "stop", res))
        except backend.VServerError as err:
            op.log.warning("cleanup after the kill: %s", err)

    def _stop_without_config(self, op, vs, ident):
        why = "vserver config dir %s not found on this node" % vs.cfgdir
        xid = ident.get("xid")
        try:
            found = vs.find_context(int(xid) if xid and xid.isdigit() else None, timeout=self._quick(op))
            if found is None and xid:
                found = vs.find_context(None, timeout=self._quick(op))
        except backend.ToolMissing as err:
            raise MissingEnvironment("%s and %s" % (why, err)) from None
        except backend.VServerError as err:
            if ident:
                raise Failure("%s and vserver-stat failed: %s" % (why, err)) from None
            op.log.info("%s and vserver-stat failed (%s): nothing was started here", why, err)
            return
        if found is not None:
            op.log.warning("%s; killing its running context %s", why, found)
            self._kill_context(op, vs, found)
        recorded = backend.decode_interfaces(ident.get("interfaces"))
        if recorded:
            left = vs.remove_addresses(recorded, timeout=self._quick(op, 5.0))
            if left:
                op.log.warning("could not remove the guest's addresses %s", " ".join(left))
        if found is None:
            op.log.info("%s and no context of it runs here", why)

    def _kill_context(self, op, vs, xid, graceful=True):
        """util-vserver's kill sequence ("signal [wait signal]*") through vkill, waits shortened to fit the
        deadline, always ending with KILL; confirmed with vserver-stat. ``graceful=False``: KILL at once."""
        seq = list(vs.killseq()) if graceful else [SIGKILL]
        if seq[-1] != SIGKILL:
            seq += [2.0, SIGKILL]

        def gone():
            if op.deadline.remaining() <= 0.05:
                return False
            return self._call(vs.find_context, xid, timeout=self._quick(op, 5.0)) is None

        for i in range(0, len(seq), 2):
            sig = seq[i]
            final = i + 1 >= len(seq)
            if op.deadline.remaining() <= 0.05:
                break
            vs.kill_context(xid, sig, timeout=self._quick(op, 5.0))
            wait = 5.0 if final else seq[i + 1]
            # leave time for what follows: at most half of what is left per wait
            stage = op.deadline.within(min(wait, op.deadline.remaining() * 0.5))
            if stage.wait_for(gone, interval=POLL, max_interval=0.5):
                return
        if not gone():
            raise Failure("context %s of vserver %s survived SIGKILL" % (xid, vs.name))
