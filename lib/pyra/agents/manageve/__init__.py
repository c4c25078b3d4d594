"""ManageVE: an OpenVZ container (vzctl, legacy or OpenVZ 7) or an LXC container, with checkpoint migration.

A drop-in superset of ``ocf:heartbeat:ManageVE`` (same ``veid`` parameter): vzctl's own exit code and both
status formats, ``start --wait``, names and UUIDs as well as numeric ids, ``paused`` reported as degraded,
retries while another vzctl holds the lock, and crash memory (a monitor after a crash says 1, after a clean
stop 7). ``runtime=lxc`` manages a real LXC container with the same semantics.

Migration (``migration=checkpoint``): ``migrate_to`` dumps the container into ``dumpdir`` (shared storage)
and the container stops on the source; ``migrate_from`` restores it on the target and removes the dump. A
failed restore leaves the dump, and the next ``start`` (Pacemaker's recovery) restores from it, so the
workload's memory state survives; a dump that cannot be restored is set aside and the container cold-starts.
``migration=restart`` moves the container by a clean stop and start; ``off`` refuses migrate_to.

The OCF semantics live here; the two runtimes behind one interface in ``runtimes``, and the vzctl and lxc
command contracts in pyra.backends.vzctl / pyra.backends.lxc.
"""

import os

from pyra.agents.base import PyraAgent
from pyra.agents.manageve.runtimes import DOWN, MISSING, PAUSED, RUNNING, LxcRuntime, VzRuntime
from pyra.ocf import checks, codes
from pyra.ocf.agent import Action
from pyra.ocf.errors import ConfigError, Failure, MissingEnvironment
from pyra.ocf.params import BOOLEAN, TIME, Param, Schema

@checks.named("container id", "A CTID, name or UUID: letters, digits and _-.:+@, at most 128 characters.")
def _veid_check(value):
    message = checks.simple_name(value)
    if message:
        return message
    if len(value) > 128:
        return "must be at most 128 characters"
    return None



class ManageVE(PyraAgent):
    name = "ManageVE"
    shortdesc = "Manages an OpenVZ container (vzctl, OpenVZ 7) or an LXC container"
    longdesc = ("Starts, stops, monitors and migrates a container. With runtime=vzctl (the default, compatible "
                "with ocf:heartbeat:ManageVE) the container is an OpenVZ VE identified by its numeric CTID, its "
                "OpenVZ 7 name or UUID; both vzctl status formats are understood, start waits for the "
                "container's init (--wait), a paused container is reported as degraded. With runtime=lxc it is "
                "an LXC container of that name. migrate_to checkpoints the container into dumpdir (shared "
                "storage) and migrate_from restores it on the target. A monitor after a crash returns "
                "OCF_ERR_GENERIC, after a clean stop OCF_NOT_RUNNING.")
    schema = Schema(
        Param("veid", required=True, unique=True, checks=[_veid_check],
              shortdesc="Container id: OpenVZ CTID, name or UUID; LXC container name",
              longdesc="The container: a numeric OpenVZ CTID (see vzlist -a), an OpenVZ 7 name or UUID, or, "
                       "with runtime=lxc, the LXC container name."),
        Param("runtime", default="vzctl", choices=("vzctl", "lxc"),
              shortdesc="Container runtime",
              longdesc="vzctl for OpenVZ (legacy or OpenVZ 7), lxc for LXC containers."),
        Param("lxc_path", checks=[checks.absolute_path],
              shortdesc="LXC container directory (lxcpath)",
              longdesc="runtime=lxc: the lxcpath holding the container (lxc-* -P). Default: LXC's "
                       "(lxc-config lxc.lxcpath, normally /var/lib/lxc). Put it on shared storage to migrate."),
        Param("lxc_config", checks=[checks.absolute_path, checks.existing_file],
              shortdesc="LXC config file",
              longdesc="runtime=lxc: a config file for lxc-start -f, instead of <lxc_path>/<veid>/config."),
        Param("start_wait", type=BOOLEAN, default=True,
              shortdesc="Wait for the container's init",
              longdesc="Start returns only when the container runs its init (vzctl start --wait; LXC state "
                       "RUNNING)."),
        Param("stop_timeout", type=TIME, default=60.0, checks=[checks.in_range(1, 3600)],
              shortdesc="Seconds for a graceful stop",
              longdesc="How long the container may take to halt before it is killed (never longer than "
                       "the stop operation's timeout allows)."),
        Param("dumpdir", checks=[checks.absolute_path],
              shortdesc="Directory for checkpoint images",
              longdesc="Shared directory where migrate_to writes the checkpoint (<dumpdir>/<resource>.dump) "
                       "and migrate_from reads it. Default: vzctl's dump directory, or "
                       "<lxc_path>/<veid>/checkpoint for LXC."),
        Param("migration", default="checkpoint", choices=("checkpoint", "restart", "off"),
              shortdesc="How migrate_to/migrate_from move the container",
              longdesc="checkpoint: dump on the source, restore on the target (memory state kept); restart: "
                       "clean stop on the source and start on the target; off: refuse migrate_to."),
        Param("vzctl", default="vzctl", advanced=True, checks=[checks.single_line],
              shortdesc="vzctl binary",
              longdesc="Name (looked up on PATH) or absolute path of the vzctl binary."),
    )
    actions = (
        Action("start", timeout=75), Action("stop", timeout=75),
        Action("monitor", timeout=20, interval=10),
        Action("migrate_to", timeout=75), Action("migrate_from", timeout=75),
    )

    identity_keys = ("veid", "runtime")

    def identify(self, op):
        p = op.params
        if not p.veid:
            raise ConfigError("parameter 'veid' is required")
        ident = {"veid": p.veid, "runtime": p.runtime}
        if p.runtime == "lxc":
            ident["lxc_path"] = p.lxc_path or ""
            ident["lxc_config"] = p.lxc_config or ""
        return ident

    def _runtime(self, op):
        """The runtime adapter for this instance's identity (Operation.identity: parameters or record)."""
        ident = op.identity()
        if ident.get("runtime") == "lxc":
            return LxcRuntime(op, ident["veid"], ident.get("lxc_path") or None, ident.get("lxc_config") or None)
        return VzRuntime(op, ident["veid"], op.params.vzctl)

    def _dumpfile(self, op, rt):
        if op.params.dumpdir:
            name = op.env.instance.replace("/", "_").split(":")[0]
            return os.path.join(op.params.dumpdir, name + ".dump")
        return rt.default_dumpfile(op)

    # -- validation -----------------------------------------------------------------------------------
    def validate(self, op):
        p = op.params
        if p.runtime != "lxc" and (p.given("lxc_path") or p.given("lxc_config")):
            raise ConfigError("lxc_path/lxc_config only apply to runtime=lxc")
        if op.depth < 10 and op.action != "validate-all":
            return
        from pyra.host.command import which
        if p.runtime == "lxc":
            if not which("lxc-start"):
                raise MissingEnvironment("LXC is not installed on this node (no lxc-start on PATH)")
        elif not which(p.vzctl):
            raise MissingEnvironment("vzctl (%s) is not installed on this node" % p.vzctl)
        if p.dumpdir and p.migration == "checkpoint" and not os.path.isdir(p.dumpdir):
            raise MissingEnvironment("dumpdir %s does not exist on this node" % p.dumpdir)
        # A CRIU that cannot dump matters only where a migration is configured (allow-migrate) or attempted
        # (migrate_to refuses then): a plain LXC resource with the default migration=checkpoint runs anywhere.
        if (op.action == "validate-all" and p.migration == "checkpoint" and p.runtime == "lxc"
                and op.env.meta_flag("allow-migrate")):
            why = self._runtime(op).checkpoint_supported()
            if why:
                raise MissingEnvironment(why)

    # -- actions --------------------------------------------------------------------------------------
    def monitor(self, op):
        rt = self._runtime(op)
        state, detail = rt.query()
        if state == RUNNING:
            return codes.SUCCESS
        if state == PAUSED:
            return op.degraded(detail)
        return op.not_running(detail)  # down or not defined here: 7, or 1 when our record says it ran

    def start(self, op):
        rt = self._runtime(op)
        state, detail = rt.query()
        if state == RUNNING:
            op.record_start()
            return codes.SUCCESS
        if state == MISSING:
            raise MissingEnvironment(detail)
        op.record_start()
        dump = self._dumpfile(op, rt) if op.params.migration == "checkpoint" else None
        if state == DOWN and dump and os.path.exists(dump):
            # a migration whose restore failed: resume the checkpoint rather than reboot the container
            try:
                rt.restore(dump)
                self._remove_dump(op, dump)
                op.log.info("restored %s from the checkpoint %s", rt.veid, dump)
            except Failure as err:
                aside = "%s.failed-%d" % (dump, int(op.deadline.start))
                op.log.warning("%s; moving the dump aside to %s and starting normally", err, aside)
                try:
                    os.rename(dump, aside)
                except OSError as mv:
                    op.log.warning("cannot move %s aside: %s", dump, mv)
                rt.start(op.params.start_wait)
        else:
            rt.start(op.params.start_wait)
        state, detail = rt.query()
        if state not in (RUNNING, PAUSED):
            raise Failure("container %s is not running after start (%s)" % (rt.veid, detail))
        return codes.SUCCESS

    def stop(self, op):
        rt = self._runtime(op)
        state, detail = rt.query()
        if state in (DOWN, MISSING):
            op.state.record_stop()
            return codes.SUCCESS
        graceful = min(op.params.stop_timeout, op.deadline.remaining() * 0.6)
        rt.stop(graceful)
        state, detail = rt.query()
        if state not in (DOWN, MISSING):
            raise Failure("container %s is still %s after stop" % (rt.veid, state))
        op.state.record_stop()
        return codes.SUCCESS

    def migrate_to(self, op):
        rt = self._runtime(op)
        target = op.env.migrate_target or "?"
        mode = op.params.migration
        if mode == "off":
            raise Failure("migration=off: not migrating %s; let Pacemaker stop and start it" % rt.veid)
        state, detail = rt.query()
        if state == PAUSED:
            raise Failure("container %s is paused; resume it before migrating" % rt.veid)
        if state != RUNNING:
            raise Failure("container %s is not running here (%s): nothing to migrate" % (rt.veid, detail))
        if mode == "restart":
            rt.stop(min(op.params.stop_timeout, op.deadline.remaining() * 0.6))
        else:
            if rt.name == "lxc":
                why = rt.checkpoint_supported()
                if why:
                    raise Failure(why)
            dump = self._dumpfile(op, rt)
            if dump and rt.name == "vzctl":
                os.makedirs(os.path.dirname(dump), exist_ok=True)
            rt.checkpoint(dump)
            op.log.info("checkpointed %s to %s for %s", rt.veid, dump or "vzctl's dump file", target)
        state, detail = rt.query()
        if state not in (DOWN, MISSING):
            raise Failure("container %s still %s after migrate_to" % (rt.veid, state))
        op.state.record_migrated(target)
        return codes.SUCCESS

    def migrate_from(self, op):
        rt = self._runtime(op)
        state, detail = rt.query()
        if state == MISSING:
            raise MissingEnvironment(detail)
        op.record_start()
        if state == RUNNING:
            return codes.SUCCESS
        if op.params.migration == "restart":
            rt.start(op.params.start_wait)
        else:
            dump = self._dumpfile(op, rt)
            rt.restore(dump)  # a failure leaves the dump for the recovery start
            self._remove_dump(op, dump)
        state, detail = rt.query()
        if state != RUNNING:
            raise Failure("container %s is not running after migrate_from (%s)" % (rt.veid, detail))
        return codes.SUCCESS

    def _remove_dump(self, op, dump):
        if not dump:
            return
        try:
            if os.path.isdir(dump):
                import shutil
                shutil.rmtree(dump)
            else:
                os.unlink(dump)
        except FileNotFoundError:
            pass
        except OSError as err:
            op.log.warning("cannot remove the checkpoint %s: %s", dump, err)
